"""The app's defaults on every zoo model: what a dashboard user gets by pressing Mine without changing anything.

For each zoo model (loaded as the app loads it) and each miner: the settings the panel preselects
(``ExplorerState.default_settings``), the seconds ``mine`` takes, what it found, and the seconds the first
rule's detail (prototype, exemplars, heatmaps) takes, with any error part. Each model runs in its own process
(its own peak memory; one model's failure does not stop the table). The bar (#26): every run ≤ 60 s on 2
idle cores.

Run: .venv/bin/python benchmarks/zoo_defaults.py [model ...]
"""
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def one_model(name: str) -> list[dict]:
    from nnrules.registry import MINERS
    from widgets.state import ExplorerState

    state = ExplorerState()
    t = time.perf_counter()
    state.load_zoo(name)
    load_s = time.perf_counter() - t
    rows = []
    for miner in list(MINERS):
        row = {"model": name, "load_s": load_s, "miner": miner}
        try:
            settings = state.default_settings(miner)
            row["layers"] = " → ".join(settings.layers)
            t = time.perf_counter()
            state.mine(settings)
            row["mine_s"] = time.perf_counter() - t
            row["found"] = state.summary
            if len(state.rules):
                state.select_rule(int(state.rules_table().iloc[0]["id"]))
                t = time.perf_counter()
                d = state.detail()
                row["detail_s"] = time.perf_counter() - t
                row["errors"] = "; ".join(f"{k}: {v[:60]}" for k, v in d.errors.items())
        except Exception as err:  # noqa: BLE001 — a failing default is what this table is for
            row["failed"] = f"{type(err).__name__}: {str(err)[:120]}"
        rows.append(row)
    return rows


def main(models: list[str]) -> None:
    from widgets.state import ExplorerState

    models = models or ExplorerState.zoo_models()
    print("## The app's defaults per zoo model and miner (2 CPU cores; each model in its own process)")
    print(f"{'model':<14}{'load s':>7}  {'miner':<12}{'mine s':>8}{'detail s':>10}  {'≤ 60 s':<7}{'layers':<32}found / error")
    for name in models:
        res = subprocess.run([sys.executable, __file__, "--model", name], capture_output=True, text=True)
        if res.returncode:
            print(f"{name:<14} failed: {(res.stderr.strip().splitlines() or ['?'])[-1]}")
            continue
        for r in json.loads(res.stdout.strip().splitlines()[-1]):
            mine, detail = r.get("mine_s"), r.get("detail_s")
            ok = "yes" if mine is not None and mine <= 60 and (detail or 0) <= 60 else "NO"
            what = r.get("failed") or (r.get("found", "") + (f"  [detail errors: {r['errors']}]" if r.get("errors") else ""))
            print(f"{name:<14}{r['load_s']:>7.1f}  {r['miner']:<12}{(f'{mine:.1f}' if mine is not None else '—'):>8}"
                  f"{(f'{detail:.1f}' if detail is not None else '—'):>10}  {ok:<7}{r.get('layers', ''):<32}{what}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--model":
        print(json.dumps(one_model(sys.argv[2])))
    else:
        main(sys.argv[1:])
