#!/usr/bin/env python3
"""Makes the damaged inputs of the bad-input corpus (standard library only).
  _mk.py wav OUT [--rate R] [--ch C] [--float] [--n N] [--value sine|nan|inf|huge]
  _mk.py st SRC.safetensors OUT MODE   (MODE: header_past_end, bad_json,
                                       offsets_past_end, unknown_dtype, i32)
"""
import json, math, struct, sys


def wav(argv):
    out = argv[0]
    opt = {"--rate": "16000", "--ch": "1", "--n": "8000", "--value": "sine"}
    flt = "--float" in argv
    i = 1
    while i < len(argv):
        if argv[i] == "--float":
            i += 1
            continue
        opt[argv[i]] = argv[i + 1]
        i += 2
    rate, ch, n, value = int(opt["--rate"]), int(opt["--ch"]), int(opt["--n"]), opt["--value"]
    samples = []
    for k in range(n):
        x = 0.5 * math.sin(2 * math.pi * 440 * k / rate)
        if value == "huge":
            x *= 1e30
        if value == "nan" and k == n // 2:
            x = float("nan")
        if value == "inf" and k == n // 2:
            x = float("inf")
        samples.append(x)
    if flt:
        data = b"".join(struct.pack("<" + "f" * ch, *([s] * ch)) for s in samples)
        fmt, bits = 3, 32
    else:
        data = b"".join(struct.pack("<" + "h" * ch, *([int(s * 32767)] * ch)) for s in samples)
        fmt, bits = 1, 16
    blk = ch * bits // 8
    hdr = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    hdr += b"fmt " + struct.pack("<IHHIIHH", 16, fmt, ch, rate, rate * blk, blk, bits)
    hdr += b"data" + struct.pack("<I", len(data))
    open(out, "wb").write(hdr + data)


def st(argv):
    src, out, mode = argv
    raw = open(src, "rb").read()
    (hl,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + hl])
    body = raw[8 + hl :]
    first = sorted(k for k in header if k != "__metadata__")[0]
    if mode == "header_past_end":
        open(out, "wb").write(struct.pack("<Q", len(raw) * 4) + raw[8:])
        return
    if mode == "bad_json":
        text = json.dumps(header).replace(":", "=", 3).encode()
        open(out, "wb").write(struct.pack("<Q", len(text)) + text + body)
        return
    if mode == "offsets_past_end":
        b, e = header[first]["data_offsets"]
        n = e - b
        header[first]["data_offsets"] = [len(body) + 64, len(body) + 64 + n]
    if mode == "unknown_dtype":
        header[first]["dtype"] = "Q7"
    if mode == "i32":
        for k in header:
            if k != "__metadata__":
                header[k]["dtype"] = "I32"
    text = json.dumps(header).encode()
    open(out, "wb").write(struct.pack("<Q", len(text)) + text + body)


if __name__ == "__main__":
    {"wav": wav, "st": st}[sys.argv[1]](sys.argv[2:])
