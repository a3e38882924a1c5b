#!/usr/bin/env bash
# mayfly-grad from the outside: a PyTorch-style checkpoint (state_dict names, written here with
# h5py and numpy) and a batch in, loss/logits/gradients out; the MLP's gradients are checked
# against a NumPy implementation of the same network. Malformed inputs give one error line and
# exit 1 or 2.
set -uo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
py=/usr/bin/python3
$py - "$out" <<'PY' || exit 1
import sys, h5py, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(5)
shapes = {"fc1.weight": (256, 784), "fc1.bias": (256,), "fc2.weight": (128, 256),
          "fc2.bias": (128,), "fc3.weight": (10, 128), "fc3.bias": (10,)}
with h5py.File(f"{d}/w.h5", "w") as f:
    for name, shape in shapes.items():
        fan_in = shape[1] if len(shape) == 2 else {256: 784, 128: 256, 10: 128}[shape[0]]
        f[name] = rng.uniform(-1, 1, shape).astype(np.float32) / np.sqrt(fan_in)
with h5py.File(f"{d}/x.h5", "w") as f:
    f["x"] = rng.random((5, 1, 28, 28), dtype=np.float32)
    f["y"] = np.array([3, 1, 4, 1, 5], dtype=np.int64)
with h5py.File(f"{d}/bad_shape.h5", "w") as f:
    for name, shape in shapes.items():
        f[name] = np.zeros(shape if name != "fc2.weight" else (128, 255), np.float32)
with h5py.File(f"{d}/missing.h5", "w") as f:
    for name, shape in shapes.items():
        if name != "fc3.bias":
            f[name] = np.zeros(shape, np.float32)
PY
"$MAYFLY_BIN/mayfly-grad" --model mlp --weights "$out/w.h5" --batch-file "$out/x.h5" \
    -o "$out/g.h5" || { echo "mayfly-grad failed"; exit 1; }
$py - "$out" <<'PY' || exit 1
import sys, h5py, numpy as np
d = sys.argv[1]
w = {k: v[()].astype(np.float64) for k, v in h5py.File(f"{d}/w.h5").items()}
b = h5py.File(f"{d}/x.h5"); x = b["x"][()].reshape(5, -1).astype(np.float64); y = b["y"][()]
h1 = np.maximum(x @ w["fc1.weight"].T + w["fc1.bias"], 0)
h2 = np.maximum(h1 @ w["fc2.weight"].T + w["fc2.bias"], 0)
z = h2 @ w["fc3.weight"].T + w["fc3.bias"]
p = np.exp(z - z.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
loss = -np.log(p[np.arange(5), y]).mean()
dz = p.copy(); dz[np.arange(5), y] -= 1; dz /= 5
g = {"fc3.weight": dz.T @ h2, "fc3.bias": dz.sum(0)}
d2 = (dz @ w["fc3.weight"]) * (h2 > 0)
g.update({"fc2.weight": d2.T @ h1, "fc2.bias": d2.sum(0)})
d1 = (d2 @ w["fc2.weight"]) * (h1 > 0)
g.update({"fc1.weight": d1.T @ x, "fc1.bias": d1.sum(0)})
out = h5py.File(f"{d}/g.h5")
assert abs(out["loss"][()] - loss) < 1e-5 * max(1, loss), (out["loss"][()], loss)
assert np.abs(out["logits"][()] - z).max() < 1e-4
for name, ref in g.items():
    got = out["grad/" + name][()]
    rel = np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-12)
    assert rel < 1e-4, (name, rel)
print("mayfly-grad matches NumPy: loss", loss)
PY
failures=0
refuse() { # expected-exit needle args...
  local expected=$1 needle=$2; shift 2
  "$MAYFLY_BIN/mayfly-grad" "$@" > "$out/log" 2>&1
  local rc=$? lines
  lines=$(grep -c '^mayfly-grad: error: ' "$out/log")
  if [ $rc -ne "$expected" ] || [ "$lines" -ne 1 ] || ! grep -q -- "$needle" "$out/log"; then
    echo "FAIL ($*): exit $rc, want $expected and one error line with '$needle':"; cat "$out/log"
    failures=$((failures + 1))
  fi
}
refuse 2 "--model" --model nosuch --batch-file "$out/x.h5" -o "$out/o.h5"
refuse 2 "--batch-file" --model mlp -o "$out/o.h5"
refuse 1 "fc2.weight" --model mlp --weights "$out/bad_shape.h5" --batch-file "$out/x.h5" -o "$out/o.h5"
refuse 1 "fc3.bias" --model mlp --weights "$out/missing.h5" --batch-file "$out/x.h5" -o "$out/o.h5"
refuse 1 "nowhere.h5" --model mlp --weights "$out/nowhere.h5" --batch-file "$out/x.h5" -o "$out/o.h5"
refuse 1 "/nonexistent/dir/o.h5" --model mlp --weights "$out/w.h5" --batch-file "$out/x.h5" -o /nonexistent/dir/o.h5
refuse 1 "conv1.weight" --model cnn --weights "$out/w.h5" --batch-file "$out/x.h5" -o "$out/o.h5"
[ $failures -eq 0 ]
