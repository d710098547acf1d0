# Sourced by the gpu_*_session.sh scripts after they set OUT: the environment of a GPU machine
# without network (impasto from src/, extra wheels from .gpu/site), the log of the session in
# $OUT/session.log, stamp "..." for timed headings, and the machine's facts.
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 IMPASTO_OFFLINE=1
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
[ -d .gpu/site ] && export PYTHONPATH="$PWD/.gpu/site:$PYTHONPATH"
exec > >(tee -a "$OUT/session.log") 2>&1
started=$SECONDS
stamp() { echo "== [$((SECONDS - started)) s] $*"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
