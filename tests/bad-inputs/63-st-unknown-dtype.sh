# a dtype no one knows
# exit: 2
# stderr: unknown dtype "Q7"
mkdir hf && cp "$HF/config.json" hf/
mk st "$HF/model.safetensors" hf/model.safetensors unknown_dtype
petal model import --hf "$W/hf" --out "$W/out.h5"
