#!/usr/bin/env bash
# Runs the numerics-sensitive test targets again, on a second OpenBLAS kernel and with every
# convolution forced onto oneDNN, so that no tolerance depends on one kernel's rounding.
# Run after tools/test.sh (it uses that build). CI runs both.
#   second kernel: Haswell, or Sandybridge when the environment already says Haswell (any AVX2
#   machine runs both); the oneDNN passes: OMP_WAIT_POLICY=passive with LAYERWISE_CONV_ENGINE=dnnl
#   (direct) and dnnl-winograd (Winograd on the maps where oneDNN has it: AVX-512 CPUs; elsewhere
#   the same as dnnl, and skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
# tools/test.sh installed Fashion-MNIST: a test that needs it fails here instead of skipping.
export LAYERWISE_REQUIRE_DATA=1
targets='TensorsTests|LayersTests|TrainingTests'
case "$(echo "${OPENBLAS_CORETYPE:-}" | tr '[:upper:]' '[:lower:]')" in
  haswell) second=Sandybridge ;;
  *) second=Haswell ;;
esac
echo "== numerics-sensitive targets with OPENBLAS_CORETYPE=$second (environment: ${OPENBLAS_CORETYPE:-unset})"
OPENBLAS_CORETYPE=$second swift test --skip-build --filter "$targets"
echo "== numerics-sensitive targets with the oneDNN conv engine forced"
OMP_WAIT_POLICY=passive LAYERWISE_CONV_ENGINE=dnnl swift test --skip-build --filter "$targets"
if grep -qw avx512f /proc/cpuinfo; then
  echo "== numerics-sensitive targets with oneDNN's Winograd conv engine forced"
  OMP_WAIT_POLICY=passive LAYERWISE_CONV_ENGINE=dnnl-winograd swift test --skip-build --filter "$targets"
else
  echo "== oneDNN's Winograd engine: no AVX-512 here, it would run the direct pass again (skipped)"
fi
