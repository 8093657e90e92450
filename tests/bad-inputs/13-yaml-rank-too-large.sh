# LoRA rank wider than the model
# exit: 2
# stderr: $W/t.yaml:2:12: lora.rank 65536 is larger than the hidden size 64
printf 'method: lora\nlora.rank: 65536\n' >t.yaml
petal train "$W/t.yaml" --threads 1
