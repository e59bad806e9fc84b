"""A workshop room (issue 43): N Chromium pages (default 8) open one link at once against `nnrules app` on this
machine; prints when each page shows the mined flow (within ROOM_S seconds, default 600), then per page its
visibility and stage and per kernel its state (mined? stage, messages) read through jupyter_client.

Run: .venv/bin/python benchmarks/room.py ["?model=cifar10-cnn&miner=explainn&layers=relu8,relu7&reduce=max&binarize=mean"]
     (ROOM_N=4 for fewer pages). Results and pictures go to fresh folders under /tmp/nnrules-room.
Measured 2026-12-08 (2-core machine), the issue's cifar10-cnn link, 8 pages: every kernel mined (read through
jupyter_client) but 0–1 of 8 pages drew the flow — plotly's figure deltas lost by views still being created.
With new FigureWidgets on each redraw (tried, reverted: they drew at 700 px) 8 of 8 at 139–149 s; the digits-cnn
link 6 of 8 at 134 s (issue 43's note).
"""
import os, re, subprocess, sys, time, signal, shutil
from pathlib import Path
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
LINK = sys.argv[1] if len(sys.argv) > 1 else "?model=cifar10-cnn&miner=explainn&layers=relu8,relu7&reduce=max&binarize=mean"
N = int(os.environ.get('ROOM_N', '8'))
env = {**os.environ, "NNRULES_RESULTS": "/tmp/nnrules-room/results", "NNRULES_PICTURES": "/tmp/nnrules-room/pictures",
       **({"NNRULES_CACHE": os.environ["NNRULES_CACHE"]} if "NNRULES_CACHE" in os.environ else {})}
shutil.rmtree("/tmp/nnrules-room/results", ignore_errors=True)
log = open("/tmp/nnrules-room/app.log", "w")
proc = subprocess.Popen([sys.executable, "-m", "nnrules", "app", f"--data={ROOT / 'notebooks' / 'data'}", "--port=8877",
                         "--max-kernels=8"], stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT), env=env,
                        start_new_session=True)
t0 = time.time()
try:
    url = None
    for _ in range(900):
        m = re.search(r"(http://127\.0\.0\.1:\d+/)", open("/tmp/nnrules-room/app.log").read())
        if m:
            url = m.group(1); break
        time.sleep(0.2)
    print("server", round(time.time() - t0, 1), url, flush=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"])
        pages = []
        for i in range(N):
            p = b.new_page(viewport={"width": 1300, "height": 1000})
            p.goto(url + LINK, wait_until="commit", timeout=120_000)
            pages.append(p)
        t1 = time.time()
        done = {}
        while time.time() - t1 < float(os.environ.get('ROOM_S', '600')) and len(done) < N:
            for i, p in enumerate(pages):
                if i in done:
                    continue
                try:
                    n = p.evaluate("document.querySelectorAll('.nnr-sankey .sankey-link').length")
                    msg = p.evaluate("(document.querySelector('.nnr-mine-msg')||{}).innerText || ''") + " | " + \
                          p.evaluate("(document.querySelector('.nnr-stage')||{}).innerText || ''")
                except Exception as e:
                    n, msg = 0, f"eval failed {e}"
                if n:
                    done[i] = round(time.time() - t1, 1)
                    print("page", i, "mined at", done[i], flush=True)
            time.sleep(5)
            print(round(time.time() - t1), "s:", len(done), "mined", flush=True)
        for i, p in enumerate(pages):
            if i not in done:
                txt = p.evaluate("document.body.innerText.slice(0, 600)")
                print("PAGE", i, "NOT MINED:", txt.replace("\n", " | ")[:600])
                p.screenshot(path=f"/tmp/nnrules-room/page-{i}.png")
        for i, p in enumerate(pages):
            vis = p.evaluate("document.visibilityState + ' ' + document.hasFocus()")
            n0 = p.evaluate("document.querySelectorAll('.nnr-sankey .sankey-link').length")
            stage = p.evaluate("(document.querySelector('.nnr-stage')||{}).innerText || ''")
            p.bring_to_front(); time.sleep(3)
            n1 = p.evaluate("document.querySelectorAll('.nnr-sankey .sankey-link').length")
            print("VIS", i, vis, "links before/after front", n0, n1, "stage", stage[:80], flush=True)
        import glob, jupyter_client  # noqa
        code = ("a = globals().get('app'); print('APP', a is not None, getattr(startup, 'app', None) is not None);"
                "a = a or startup.app; print('MINED', a.state.mined, repr(a.mine_panel.stage.value[:200]), repr(a.mine_panel.msg.value[:300]),"
                " repr(a.msg.value[:300]), a.mine_panel.thread, a.model_panel.jobs.busy, a._view)")
        for f in glob.glob("/tmp/voila_*/kernel-*.json"):
            try:
                kc = jupyter_client.BlockingKernelClient(connection_file=f); kc.load_connection_file(); kc.start_channels()
                out = []
                kc.execute_interactive(code, timeout=30, output_hook=lambda m: out.append(m["content"].get("text", m["content"].get("evalue", ""))))
                print("KERNEL", f[-20:], " ".join(out)[:900], flush=True)
                kc.stop_channels()
            except Exception as e:
                print("KERNEL", f[-20:], "failed", e)
        b.close()
finally:
    os.killpg(proc.pid, signal.SIGTERM)
