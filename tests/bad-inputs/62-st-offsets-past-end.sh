# data offsets past the end
# exit: 2
# stderr: runs past the end of the file
mkdir hf && cp "$HF/config.json" hf/
mk st "$HF/model.safetensors" hf/model.safetensors offsets_past_end
petal model import --hf "$W/hf" --out "$W/out.h5"
