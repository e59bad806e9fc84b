"""Command line: ``nnrules {app,layers,record,mine,demo,zoo-weights,warmup}`` (``--help`` on each)."""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

__all__ = ["main"]


def _zoo_or_file(args):
    from . import zoo
    from .recording.loading import load_model

    if args.model_file:
        if not args.data:
            raise SystemExit("--model-file needs --data (an image folder)")
        return (load_model(args.model_file, args.architecture or None, trust=args.trust_pickle), args.data,
                None)
    z = zoo.load(args.model)
    return z.model, z.test, z


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="digits-cnn", help="zoo model name (default: digits-cnn)")
    p.add_argument("--model-file", help="a model file instead of --model: weights saved with "
                                        "torch.save(model.state_dict(), path) (give --architecture) or a "
                                        "torch.export archive (.pt2)")
    p.add_argument("--architecture", help="the architecture of --model-file's weights: a zoo or torchvision "
                                          "model name, or package.module:function")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow a --model-file that runs code when loaded: a whole pickled module "
                        "(torch.save(model, path)), a TorchScript archive or a .pt2 with pickled objects; "
                        "only for files you made yourself")
    p.add_argument("--data", help="an image folder (one sub-folder per class) for --model-file")


def cmd_layers(args) -> int:
    from .recording.loading import as_loader, split_batch
    from .recording.hooks import layers

    model, data, _ = _zoo_or_file(args)
    loader, _ = as_loader(data, 1)
    x, _ = split_batch(next(iter(loader)))
    print(layers(model, x).to_string(index=False))
    return 0


def cmd_record(args) -> int:
    from .recording.record import record

    model, data, z = _zoo_or_file(args)
    acts = record(model, data, args.layers, reduce=args.reduce, batch_size=args.batch_size,
                  class_names=z.class_names if z else None, store=args.store)
    if args.store:
        print(f"{acts} -> {args.store}")
        return 0
    acts.save(args.out)
    print(f"{acts} -> {args.out}")
    return 0


def _print_rules(rs, top: int) -> None:
    df = rs.to_frame().head(top)
    for _, r in df.iterrows():
        print(f"  {{{', '.join(r['head'])}}} →[l={r['head_min']}] {{{', '.join(r['tail'])}}} "
              f"[k={r['tail_min']}]  support={r['support']} conf={r['confidence']:.2f} gain={r['gain']:.1f} bits")


def _client(args):
    """The Dask client ``mine`` counts on: a scheduler's address, a local cluster of N workers, or none."""
    if args.workers is not None and args.workers < 1:  # 0 is refused, not read as "no cluster"
        raise ValueError(f"--workers must be ≥ 1, got {args.workers}")
    if args.scheduler and args.workers:
        raise ValueError("give --scheduler or --workers, not both")
    if (args.scheduler or args.workers) and not args.store:
        raise ValueError("--scheduler and --workers count from a Zarr store: record with --store and mine with --store")
    if args.workers:
        from .scale import local_cluster
        return local_cluster(args.workers)
    if args.scheduler:
        from .scale.cluster import distributed_module
        try:  # a closed port or a wrong address: a message after SCHEDULER_TIMEOUT, not a silent hang
            return distributed_module().Client(args.scheduler, timeout=SCHEDULER_TIMEOUT)
        except (OSError, TimeoutError) as err:
            raise ValueError(f"--scheduler {args.scheduler!r}: no Dask scheduler answered within "
                             f"{SCHEDULER_TIMEOUT} ({type(err).__name__}); check the address and that it runs") from None
    return None


#: How long ``--scheduler`` waits for the scheduler to answer.
SCHEDULER_TIMEOUT = "15s"


def cmd_mine(args) -> int:
    from .miners.explainn import ExplaiNN
    from .miners.flow import trace
    from .recording.record import Activations

    names = list(args.names)
    if args.store:
        from .scale import open_activations
        acts, layers = open_activations(args.store), names
    else:
        if len(names) < 2:
            raise ValueError("give the activations file (.npz from `nnrules record`) and at least one layer, or "
                             "--store with the layers")
        acts, layers = Activations.load(names[0]), names[1:]
    client = _client(args)
    try:
        t = time.perf_counter()
        flow = trace(acts, layers, ExplaiNN(theta=args.theta, mu=args.mu))
        where = f" on {len(client.scheduler_info()['workers'])} Dask workers" if client is not None else ""
        print(f"mined in {time.perf_counter() - t:.2f}s{where}")
    finally:
        if client is not None:
            client.close()
    for rs in flow.rulesets:
        print(f"{rs.head_layer} → {rs.tail_layer}: {len(rs)} rules, {rs.codelength:.0f} bits "
              f"(singletons: {rs.baseline_codelength:.0f})")
        _print_rules(rs, args.top)
    return 0


def cmd_demo(args) -> int:
    from . import zoo
    from .data.binarizer import Binarizer
    from .evaluation.interventions import intervene
    from .miners.explainn import ExplaiNN
    from .miners.flow import trace
    from .recording.hooks import layers
    from .recording.record import record

    t = time.perf_counter()
    z = zoo.load(args.model)
    print(f"== {z.name}: held-out accuracy {z.accuracy:.3f} ({len(z.train)} train / {len(z.test)} test; "
          f"{time.perf_counter() - t:.1f}s to load) ==")
    print(f"data: {z.info.get('data', '')}\n")
    print(layers(z.model, z.example_input).to_string(index=False), "\n")
    chain = ["relu3", "relu2"]
    acts = record(z.model, z.train, chain, reduce="max", class_names=z.class_names, progress=False)
    print(f"recorded {acts}")
    binarizer = Binarizer("mean")  # ERIC eq. 4: on when above the unit's mean over the data
    print("binarized (a unit is on above its mean; the output is the predicted class):")
    for name, bm in binarizer.fit_transform(acts).items():
        print(f"  {name:>7}: {bm.n_units:3d} units, density {bm.density():.3f}")
    t = time.perf_counter()
    flow = trace(acts, chain, ExplaiNN(), binarizer=binarizer)
    print(f"\nExplaiNN information flow output → {' → '.join(chain)} in {time.perf_counter() - t:.2f}s")
    for rs in flow.rulesets:
        print(f"{rs.head_layer} → {rs.tail_layer}: {len(rs)} rules; {rs.codelength:.0f} bits vs "
              f"{rs.baseline_codelength:.0f} bits for singletons")
        _print_rules(rs, args.top)
    print(f"rule chains output → {' → '.join(chain)}: {len(flow.chains())}")
    iv = intervene(z.model, flow.rulesets[0], z.test)
    print("\nIntervention (zero weights from each class's rule tails; test set):")
    print(iv.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def cmd_zoo_weights(args) -> int:
    from . import zoo

    print(f"retraining {args.name} from scratch and comparing with the weights it ships…")
    r = zoo.check_shipped(args.name)
    print(f"accuracy: shipped {r['accuracy_shipped']:.4f}, retrained {r['accuracy_retrained']:.4f}; "
          f"largest weight difference {r['max_abs_weight_diff']:.3g}")
    same = abs(r["accuracy_shipped"] - r["accuracy_retrained"]) <= 0.01
    print("the shipped weights are reproduced" if same else "the retrained model differs from the shipped one")
    return 0 if same else 1


def served_dir() -> Path:
    """The folder of files Voila serves, shipped inside the package: ``explorer.ipynb`` and ``voila.json``."""
    spec = importlib.util.find_spec("nnrules.widgets")  # imports nnrules only, not the widgets
    assert spec is not None and spec.submodule_search_locations
    return Path(list(spec.submodule_search_locations)[0]) / "served"


def app_command(data: str, port: int = 8866, max_kernels: int = 8, idle_timeout: int = 900,
                ip: str = "127.0.0.1") -> tuple[list[str], dict[str, str]]:
    """The Voila command line and environment ``nnrules app`` runs: the shipped explorer notebook, its
    ``voila.json`` (progressive rendering, uploads up to 1 GiB through the websocket), the kernel cap
    (``CappedKernelManager``) with its "room is full" page that retries by itself, idle culling and the data
    root (``NNRULES_DATA``, the only folder read)."""
    root = Path(data).expanduser()
    if not root.is_dir():
        raise ValueError(f"--data {data!r} is not a folder: give the folder whose files the app may read "
                         "(images, weights; uploads are kept there too)")
    for name, value, low in (("--port", port, 0), ("--max-kernels", max_kernels, 1),
                             ("--idle-timeout", idle_timeout, 0)):
        if not low <= value <= (65535 if name == "--port" else 10 ** 9):
            raise ValueError(f"{name} must be an integer ≥ {low}" + (" and ≤ 65535" if name == "--port" else "")
                             + f", got {value}")
    served = served_dir()
    if importlib.util.find_spec("voila") is None:
        raise ValueError("Voila is not installed in this environment: pip install voila (or pip install nnrules, "
                         "which depends on it)")
    cmd = [sys.executable, "-m", "voila", "--no-browser", f"--Voila.ip={ip}", f"--port={port}",
           "--VoilaConfiguration.multi_kernel_manager_class=nnrules.widgets.server.CappedKernelManager",
           f"--CappedKernelManager.max_kernels={max_kernels}",
           f"--MappingKernelManager.cull_idle_timeout={idle_timeout}", "--MappingKernelManager.cull_interval=60",
           str(served / "explorer.ipynb")]
    config_path = os.pathsep.join(p for p in (str(served), os.environ.get("JUPYTER_CONFIG_PATH", "")) if p)
    # the page a visit gets when the room is full (503.html) overlays Voila's lab template
    data_path = os.pathsep.join(p for p in (str(served / "jupyter"), os.environ.get("JUPYTER_PATH", "")) if p)
    env = {**os.environ, "NNRULES_DATA": str(root.resolve()), "JUPYTER_CONFIG_PATH": config_path,
           "JUPYTER_PATH": data_path}
    return cmd, env


def cmd_app(args) -> int:
    cmd, env = app_command(args.data, args.port, args.max_kernels, args.idle_timeout, args.ip)
    print(f"nnrules explorer: reading files only under {env['NNRULES_DATA']}; at most {args.max_kernels} pages at "
          "once. Open the http://… address Voila prints below (Ctrl-C stops it).", flush=True)
    from .miners.warmup import warm_up

    # numba's cache filled before any page opens (a fresh install compiles here, ~20 s, once): a visitor's
    # first Mine then loads the kernels instead of compiling them (issue 43)
    print(f"miners' kernels ready ({warm_up():.1f} s; compiled once per install, then read from numba's cache)",
          flush=True)
    os.execve(cmd[0], cmd, env)  # this process becomes Voila: Ctrl-C and signals reach it, kernels are its children
    return 0  # not reached


def cmd_precompute(args) -> int:
    # the app's layer (ipywidgets), imported only for this command: the core never imports it
    errors = importlib.import_module("nnrules.widgets.state.errors")
    try:
        importlib.import_module("nnrules.widgets.state.precompute").precompute(
            args.model, args.miner, args.rules, minutes=args.minutes, parts=args.parts.split(","))
    except errors.UserInputError as err:
        raise ValueError(str(err)) from err
    return 0


def cmd_export(args) -> int:
    errors = importlib.import_module("nnrules.widgets.state.errors")  # the app's layer, for this command only
    try:
        importlib.import_module("nnrules.widgets.export").export_site(args.model, args.out, args.miner, args.rules)
    except errors.UserInputError as err:
        raise ValueError(str(err)) from err
    return 0


def cmd_warmup(args) -> int:
    from .miners.warmup import warm_up

    print(f"miners' kernels compiled or loaded from numba's cache in {warm_up():.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    from . import __version__
    from .miners.explainn import ExplaiNN
    from .registry import REDUCTIONS

    parser = argparse.ArgumentParser(prog="nnrules", description="Mine rules between groups of neurons.")
    parser.add_argument("--version", action="version", version=f"nnrules {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("app", help="serve the explorer in the browser (Voila), reading files only under --data")
    p.add_argument("--data", default=".", help="the only folder the app reads files from and keeps uploads in "
                                               "(default: the current folder)")
    p.add_argument("--port", type=int, default=8866, help="the port (default: 8866; the next free one if taken)")
    p.add_argument("--ip", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1, this machine "
                                                     "only; 0.0.0.0 serves a room)")
    p.add_argument("--max-kernels", type=int, default=8, help="the most pages served at once, about 1 GB of "
                                                              "memory each (default: 8)")
    p.add_argument("--idle-timeout", type=int, default=900, help="seconds after which an idle page's kernel is "
                                                                 "stopped (default: 900)")
    p.set_defaults(fn=cmd_app)
    p = sub.add_parser("layers", help="list a model's layers with output shapes")
    _add_model_args(p)
    p.set_defaults(fn=cmd_layers)
    p = sub.add_parser("record", help="record activations of layers to an .npz file")
    _add_model_args(p)
    p.add_argument("layers", nargs="+", help="layer names (see `nnrules layers`)")
    p.add_argument("--reduce", default="max", choices=list(REDUCTIONS),
                   help="how a conv channel's map becomes units: " +
                        "; ".join(f"{e.name}: {e.help}" for e in REDUCTIONS.entries()) + " (default: max)")
    p.add_argument("--batch-size", type=int, default=256, help="samples per forward pass (default: 256)")
    p.add_argument("--out", default="activations.npz", help="the .npz file to write (default: activations.npz)")
    p.add_argument("--store", help="stream the activations into a new Zarr store (a folder) instead of --out: "
                                   "for recordings larger than memory (needs nnrules[scale])")
    p.set_defaults(fn=cmd_record)
    p = sub.add_parser("mine", help="ExplaiNN rules output → layer → … from recorded activations",
                       usage="nnrules mine ACTIVATIONS.npz LAYER [LAYER ...] | nnrules mine --store STORE LAYER "
                             "[LAYER ...] [--workers N | --scheduler ADDRESS]")
    p.add_argument("names", nargs="+", metavar="ACTIVATIONS LAYER",
                   help="an .npz written by `nnrules record`, then the layers to chain from the output down "
                        "(with --store: the layers only)")
    p.add_argument("--store", help="a Zarr store written by `nnrules record --store`: binarized in passes into it")
    p.add_argument("--workers", type=int, help="count on a local Dask cluster of N worker processes (with --store)")
    p.add_argument("--scheduler", help="count on the Dask cluster whose scheduler is at this address, e.g. "
                                       "tcp://10.0.0.5:8786 (with --store; dask-jobqueue and dask-kubernetes "
                                       "clusters print theirs). The scheduler is trusted: its frames are "
                                       "unpickled, so connect only to a cluster you run")
    theta, mu = (next(q for q in ExplaiNN.params if q.name == n) for n in ("theta", "mu"))
    p.add_argument("--theta", type=float, default=theta.default, help=f"θ: {theta.help} (default: {theta.default})")
    p.add_argument("--mu", type=int, default=mu.default, help=f"μ: {mu.help} (default: {mu.none_means})")
    p.add_argument("--top", type=int, default=10, help="rules printed per layer pair (default: 10)")
    p.set_defaults(fn=cmd_mine)
    p = sub.add_parser("demo", help="train/load a zoo model, record, binarize, mine, intervene")
    p.add_argument("--model", default="digits-cnn", help="a zoo model (default: digits-cnn)")
    p.add_argument("--top", type=int, default=8, help="rules printed per layer pair (default: 8)")
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser("zoo-weights", help="retrain a zoo model whose weights ship with nnrules and compare")
    p.add_argument("name", help="the zoo model, e.g. mnist-cnn")
    p.set_defaults(fn=cmd_zoo_weights)
    p = sub.add_parser("precompute", help="draw the app's pictures of a zoo model's first rules into the cache "
                                          "every page reads (a workshop's first clicks are then instant)")
    p.add_argument("--model", default="digits-cnn", help="a zoo model (default: digits-cnn)")
    p.add_argument("--miner", default="explainn", help="the miner, mined with the app's defaults (default: explainn)")
    p.add_argument("--rules", type=int, default=60, help="the top rules by support to draw, with their groups "
                                                         "(default: 60, what the Sankey shows first)")
    p.add_argument("--minutes", type=float, default=None, help="stop after this many minutes; the cheap parts of "
                                                               "every rule come first, prototypes last (default: "
                                                               "no limit)")
    p.add_argument("--parts", default="pictures,prototypes", help="what to draw: pictures (exemplars and heatmaps), "
                                                                  "prototypes, or both (default)")
    p.set_defaults(fn=cmd_precompute)
    p = sub.add_parser("export", help="write a zoo model's rules as a static site (HTML and PNG pages any web server "
                                      "serves to any number of readers, no kernel)")
    p.add_argument("--model", default="digits-cnn", help="a zoo model (default: digits-cnn)")
    p.add_argument("--miner", default="explainn", help="the miner, mined with the app's defaults (default: explainn)")
    p.add_argument("--rules", type=int, default=60, help="the rules the flow shows first, a page each (default: 60)")
    p.add_argument("--out", required=True, help="a new or empty folder to write the site into")
    p.set_defaults(fn=cmd_export)
    p = sub.add_parser("warmup", help="compile the miners' numba kernels now (once per install; `make` does it), "
                                      "so the first mine is fast")
    p.set_defaults(fn=cmd_warmup)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, TypeError, OSError, KeyError) as err:
        print(f"nnrules: error: {err}", file=sys.stderr)
        return 2
