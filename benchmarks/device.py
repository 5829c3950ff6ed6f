"""The NUTS, SMC, ChEES (and, where present, VI) benchmarks on whatever accelerator JAX finds, in one process.

    python benchmarks/device.py [--quick] [--only nuts,smc,vi,chees]

Runs ``benchmarks/nuts.py`` (ppl through ``ppl.infer`` against NumPyro jitted and BlackJAX, min
bulk ESS per second), ``benchmarks/smc.py`` (ppl against the hand-written JAX filters) and
``benchmarks/vi.py`` when that script exists, and ``benchmarks/chees.py`` (ppl.ChEES against
ppl.NUTS at 1,024 and 4,096 chains: time to a target min-ESS), one after another in this process, on the default
device (a GPU or TPU when one is present, else the CPU), and prints which device ran them. Each
benchmark prints its own side-by-side table with ratios. ``--quick``: shorter runs, to check that
everything works on a new machine before a full run. Paste the output into benchmarks/README.md
under the device's name.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name: str):
    path = os.path.join(HERE, f"{name}.py")
    if not os.path.exists(path):
        return None
    spec = importlib.util.spec_from_file_location(f"ppl_benchmark_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def describe_devices() -> str:
    import jax

    devices = jax.devices()
    kinds = sorted({getattr(d, "device_kind", d.platform) for d in devices})
    return f"{len(devices)} x {', '.join(kinds)} ({devices[0].platform}), jax {jax.__version__}"


ARGS = {
    # benchmark: (full arguments, --quick arguments)
    "nuts": ([], ["--repeats", "1", "--warmup", "300", "--samples", "300"]),
    "smc": ([], ["--repeats", "3", "--particles", "1000", "10000"]),
    "vi": ([], ["--repeats", "1", "--steps", "200", "--skip-vae"]),
    "chees": ([], ["--repeats", "1", "--chains", "1024", "--warmup", "200"]),
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="nuts,smc,vi,chees")
    args = parser.parse_args(argv)
    print(f"devices: {describe_devices()}", flush=True)
    for name in args.only.split(","):
        module = _load(name)
        if module is None:
            print(f"\n== {name}: benchmarks/{name}.py is not there; skipped", flush=True)
            continue
        full, quick = ARGS.get(name, ([], []))
        print(f"\n== {name} ({'quick' if args.quick else 'full'})", flush=True)
        start = time.perf_counter()
        try:
            module.main(quick if args.quick else full)
        except SystemExit as stop:  # the benchmark's own argument parser refused: say so, go on
            print(f"({name}: stopped with {stop.code}; check its options in benchmarks/device.py ARGS)", flush=True)
            continue
        print(f"({name}: {time.perf_counter() - start:.0f} s)", flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
