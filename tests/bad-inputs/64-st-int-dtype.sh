# integer tensors
# exit: 2
# stderr: has dtype I32 (F32, F16, BF16 or F64 expected)
mkdir hf && cp "$HF/config.json" hf/
mk st "$HF/model.safetensors" hf/model.safetensors i32
petal model import --hf "$W/hf" --out "$W/out.h5"
