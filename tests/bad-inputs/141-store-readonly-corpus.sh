# a corpus on a read-only file system and the default cache (dataset.root/.petal-cache) under it
# exit: 2
# stderr: $W/s.yaml:2:34: features.cache (by default dataset.root/.petal-cache) $W/ro/.petal-cache: cannot create the folder ($W/ro: Read-only file system)
ro_mount ro "$FIX/esc"
esc_spec s.yaml "$W/ro"
petal sweep "$W/s.yaml" --out "$W/run"
