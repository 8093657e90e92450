# a header that is not JSON
# exit: 2
# stderr: $W/hf/model.safetensors: header:1:
mkdir hf && cp "$HF/config.json" hf/
mk st "$HF/model.safetensors" hf/model.safetensors bad_json
petal model import --hf "$W/hf" --out "$W/out.h5"
