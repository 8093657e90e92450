# a header length past the end of the file
# exit: 2
# stderr: $W/hf/model.safetensors: header length
mkdir hf && cp "$HF/config.json" hf/
mk st "$HF/model.safetensors" hf/model.safetensors header_past_end
petal model import --hf "$W/hf" --out "$W/out.h5"
