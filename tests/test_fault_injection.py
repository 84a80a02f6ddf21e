"""Fault injection: every LARB command that writes, killed anywhere, filled up, or made read-only.

Each scenario is one writing command (evaluate --output, leaderboard, data build, data export,
baseline train, baseline run, the asset cache, the embedding cache) run in a subprocess over a
fresh copy of a workspace that already holds an old output. A wrapper installs an audit hook
(`sys.addaudithook`) that counts the file-system events under the workspace (open, rename,
remove, mkdir, rmtree, chmod) and sends itself SIGKILL at event N. A first, unharmed run counts
the events; then KILLS points are drawn from them with a fixed seed. After each kill:

- the output is the old one or the whole new one, never a mix (`Scenario.state`);
- the same command run again succeeds, gives the new output and leaves no stray file.

Then each command runs on a full disk (a tmpfs filled to the last byte), under a file-size limit
(RLIMIT_FSIZE) and on a read-only mount: exit 2, one line naming the path and the cause, no
traceback, the old output intact. Mounting needs root; those cases skip with a reason otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import MIRROR
from data_helpers import Loopback, clotho_captions_csv, clotho_metadata_csv, wav_bytes

KILLS = 20
SEED = 20261201
STRAY_MARKS = (".partial", ".old-", ".tmp")

# The wrapper the commands run under: counts file-system events below LARB_FAULT_ROOT and
# kills itself at event LARB_FAULT_AT (0: never; then it writes the count to LARB_FAULT_COUNT).
WRAPPER = textwrap.dedent('''
    import atexit, os, signal, sys
    ROOT = os.environ["LARB_FAULT_ROOT"]
    AT = int(os.environ.get("LARB_FAULT_AT", "0"))
    WATCH = {"open", "os.rename", "os.remove", "os.rmdir", "os.mkdir", "shutil.rmtree", "os.chmod",
             "os.truncate"}
    count = 0

    def hook(event, args):
        global count
        if event not in WATCH or not args or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        if not os.path.abspath(os.fsdecode(os.fspath(args[0]))).startswith(ROOT):
            return
        count += 1
        if count == AT:
            os.kill(os.getpid(), signal.SIGKILL)

    def report():
        with open(os.environ["LARB_FAULT_COUNT"], "w") as handle:
            handle.write(str(count))

    if not AT:
        atexit.register(report)
    sys.addaudithook(hook)
    if sys.argv[1] == "-c":
        code = sys.argv[2]
        del sys.argv[1:3]
        exec(compile(code, "<scenario>", "exec"))
    else:
        from benchmark.cli import main
        sys.exit(main(sys.argv[1:]))
''')


# A warm process that forks each command instead of starting Python anew: the baseline commands
# spend most of a cold start importing torch, transformers and accelerate (about 3 s of a 4-6 s
# run here), and each is run 41 times. The child is the same as a fresh process for what the
# tests judge: it installs the wrapper's audit hook after the fork, takes the run's environment,
# working folder and file-size limit, and is killed by SIGKILL like any process. Only modules that
# read no per-run environment at import are preloaded (not `datasets`, which reads HF_DATASETS_CACHE).
ZYGOTE = textwrap.dedent('''
    import json, os, resource, sys, threading
    WRAPPER = sys.stdin.readline()
    WRAPPER = json.loads(WRAPPER)
    for name in sys.argv[1:]:
        __import__(name)
    os.write(1, b'{"id": 0, "ready": true}\\n')

    def reap(number, pid):
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        os.write(1, (json.dumps({"id": number, "returncode": code}) + "\\n").encode())

    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.chdir(request["cwd"])
                os.environ.clear()
                os.environ.update(request["env"])
                if request["limit"] is not None:
                    resource.setrlimit(resource.RLIMIT_FSIZE, (request["limit"], request["limit"]))
                os.dup2(os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 2)
                os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
                os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
                sys.stdout, sys.stderr = open(1, "w", closefd=False), open(2, "w", closefd=False)
                sys.argv = ["wrapper", *request["argv"]]
                namespace = {"__name__": "__main__"}
                try:
                    exec(compile(WRAPPER, "<wrapper>", "exec"), namespace)
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if "report" in namespace and not int(request["env"].get("LARB_FAULT_AT", "0")):
                    namespace["report"]()
            except BaseException:
                import traceback
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        os.write(1, (json.dumps({"id": request["id"], "pid": pid}) + "\\n").encode())
        threading.Thread(target=reap, args=(request["id"], pid), daemon=True).start()
''')
# what the baseline commands import, loaded once by the zygote
PRELOAD = ("torch", "torch._dynamo", "torch.fx.experimental.symbolic_shapes", "transformers",
           "transformers.modeling_utils", "transformers.modeling_layers", "transformers.masking_utils",
           "transformers.activations", "accelerate", "tabulate", "benchmark.cli", "baselines.cli", "baselines.runner",
           "baselines.train.loop", "baselines.models.passt_mpnet_tags", "baselines.encoders.mn04",
           "baselines.encoders.sentence_encoders", "baselines.encoders.taggers")


class Zygote:
    """The test's side of the warm process: start a command, learn its pid, wait for its exit code."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", ZYGOTE, *PRELOAD], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env, text=True, bufsize=1)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(WRAPPER) + "\n")
        self.lock = threading.Lock()
        self.replies: dict[tuple[int, str], Future] = {}
        self.count = 0
        threading.Thread(target=self._read, daemon=True).start()
        self._reply(0, "ready").result(timeout=300)  # preloaded: a run's duration is the command's own

    def _reply(self, number: int, kind: str) -> Future:
        with self.lock:
            return self.replies.setdefault((number, kind), Future())

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            reply = json.loads(line)
            kind = next(k for k in ("pid", "returncode", "ready") if k in reply)
            self._reply(reply["id"], kind).set_result(reply[kind])

    def run(self, argv: list[str], cwd: Path, env: dict[str, str], stderr: Path, limit: int | None,
            after: float | None, timeout: float) -> int:
        """The exit code of `argv` (negative: killed by that signal), killed after `after` seconds."""
        with self.lock:
            self.count += 1
            number = self.count
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps({"id": number, "argv": argv, "cwd": str(cwd), "env": env,
                                                 "stderr": str(stderr), "limit": limit}) + "\n")
        pid = self._reply(number, "pid").result(timeout=60)
        done = self._reply(number, "returncode")
        try:
            return done.result(timeout=after if after is not None else timeout)
        except FutureTimeout:
            with contextlib.suppress(ProcessLookupError):  # it may have ended just now
                os.kill(pid, signal.SIGKILL)
            return done.result(timeout=60)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


@dataclass
class Scenario:
    """One writing command: how to set up its workspace, run it, and judge what it left."""

    name: str
    setup: Callable[[Path], None]  # writes the inputs and the old output into the workspace
    argv: Callable[[Path], list[str]]  # the command line (or ["-c", code]) for a workspace
    state: Callable[[Path], str]  # "old", "new" or "none" (no output yet); AssertionError on a mix
    output: Callable[[Path], Path]  # the output whose folder must hold no stray files
    env: Callable[[Path], dict[str, str]] = lambda root: {}
    zygote: Zygote | None = None  # a warm process to fork the command from (set by the fixture)


def run(scenario: Scenario, root: Path, *, at: int = 0, after: float | None = None, limit_bytes: int | None = None,
        timeout: float = 300) -> tuple[int, str, int]:
    """(exit code, stderr, events counted) of one run of the scenario's command in `root`, killed at
    file event `at` or after `after` seconds when given."""
    count_file = root.parent / f"{root.name}.count"
    env = {**os.environ, "LARB_FAULT_ROOT": str(root), "LARB_FAULT_AT": str(at), "LARB_FAULT_COUNT": str(count_file),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "TQDM_DISABLE": "1", **scenario.env(root)}
    env.pop("LARB_DEBUG", None)

    if scenario.zygote is not None:
        stderr = root.parent / f"{root.name}.stderr"
        code = scenario.zygote.run(scenario.argv(root), root, env, stderr, limit_bytes, after, timeout)
        events = int(count_file.read_text()) if at == 0 and after is None and count_file.exists() else 0
        return code, stderr.read_text(), events

    def limit() -> None:
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    with subprocess.Popen([sys.executable, "-c", WRAPPER, *scenario.argv(root)], cwd=root, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          preexec_fn=limit) as child:  # noqa: PLW1509 - it only calls setrlimit
        try:
            _, err = child.communicate(timeout=after if after is not None else timeout)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
            _, err = child.communicate()
    events = int(count_file.read_text()) if at == 0 and after is None and count_file.exists() else 0
    return child.returncode, err, events


def stray_files(scenario: Scenario, root: Path) -> list[str]:
    """Temporary files and folders beside the output or inside it."""
    output = scenario.output(root)
    if not output.parent.is_dir():
        return []
    near = [*output.parent.iterdir(), *(output.rglob("*") if output.is_dir() else ())]
    return sorted(p.name for p in near if any(mark in p.name for mark in STRAY_MARKS))


PROGRESS = re.compile(r"\d+/\d+ \[[0-9:<?]+")  # a tqdm bar: "12/240 [00:01<00:03"


def one_line_error(stderr: str) -> str:
    """The one error line; anything else on stderr may only be a logged warning or a progress bar."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.strip().splitlines()
             if line.strip() and not line.startswith("larb: WARNING") and not PROGRESS.search(line)]
    assert len(lines) == 1 and lines[0].startswith("larb: error: "), stderr
    return lines[0]


# ---- the workspaces ---------------------------------------------------------------------------

def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def demo_submission(folder: Path, seed: int) -> Path:
    from benchmark.reference_systems import write_random_submission
    from benchmark.tasks import get_task

    write_random_submission(folder, "demo", get_task("demo").ground_truth, seed, "2026-12-01")
    return folder


def evaluate_scenario() -> Scenario:
    def setup(root: Path) -> None:
        demo_submission(root / "sub-a", 1)
        demo_submission(root / "sub-b", 2)
        subprocess.run([sys.executable, "-m", "benchmark.cli", "evaluate", "sub-a", "--task", "demo", "--output",
                        "out/record.json"], cwd=root, check=True, capture_output=True)

    def state(root: Path) -> str:
        record = json.loads((root / "out" / "record.json").read_text())
        sha = record["submission"]["sha256"]
        assert sha in (digest(root / "sub-a" / "demo.csv"), digest(root / "sub-b" / "demo.csv"))
        return "new" if sha == digest(root / "sub-b" / "demo.csv") else "old"

    return Scenario("evaluate", setup, lambda root: ["evaluate", "sub-b", "--task", "demo", "--output",
                                                     "out/record.json"],
                    state, lambda root: root / "out" / "record.json")


def leaderboard_scenario() -> Scenario:
    def setup(root: Path) -> None:
        demo_submission(root / "subs" / "run-a", 1)
        subprocess.run([sys.executable, "-m", "benchmark.cli", "leaderboard", "--submissions", "subs",
                        "--output", "board.md"], cwd=root, check=True, capture_output=True)
        (root / "board.old").write_bytes((root / "board.md").read_bytes())
        demo_submission(root / "subs" / "run-b", 2)

    def state(root: Path) -> str:
        text = (root / "board.md").read_text()
        if text == (root / "board.old").read_text():
            return "old"
        assert "run-a" in text and "run-b" in text and text.endswith("\n"), text[-200:]
        return "new"

    return Scenario("leaderboard", setup,
                    lambda root: ["leaderboard", "--submissions", "subs", "--output", "board.md"],
                    state, lambda root: root / "board.md")


NAMES = ["a dog.wav", " space first.wav", "rain.wav"]


def clotho_data(folder: Path, captions: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "clotho_captions_evaluation.csv").write_bytes(captions)
    (folder / "clotho_metadata_evaluation.csv").write_bytes(clotho_metadata_csv(NAMES))
    (folder / "evaluation").mkdir(exist_ok=True)
    for i, name in enumerate(NAMES):
        (folder / "evaluation" / name).write_bytes(wav_bytes(seconds=0.05, seed=i))
    return folder


def build_argv(data: str, output: str) -> list[str]:
    return ["data", "build", "clotho", "--split", "evaluation", "--data-dir", data, "--output", output,
            "--overwrite"]


def built_captions(folder: Path) -> list:
    import datasets

    return datasets.load_from_disk(str(folder))["evaluation"]["captions"]


def data_env(root: Path) -> dict[str, str]:
    return {"LARB_CACHE_DIR": str(root / "cache"), "HF_DATASETS_CACHE": str(root / "hf")}


def build_scenario() -> Scenario:
    old_captions = clotho_captions_csv(NAMES, captions_per_file=2)
    new_captions = clotho_captions_csv(NAMES, captions_per_file=3)

    def setup(root: Path) -> None:
        clotho_data(root / "old-data", old_captions)
        clotho_data(root / "data", new_captions)
        subprocess.run([sys.executable, "-m", "benchmark.cli", *build_argv("old-data", "built")], cwd=root, check=True,
                       capture_output=True, env={**os.environ, **data_env(root)})
        shutil.rmtree(root / "old-data")

    def state(root: Path) -> str:
        captions = built_captions(root / "built")
        assert {len(c) for c in captions} in ({2}, {3}), captions
        return "new" if len(captions[0]) == 3 else "old"

    return Scenario("data build", setup, lambda root: build_argv("data", "built"), state,
                    lambda root: root / "built", data_env)


def export_scenario() -> Scenario:
    def setup(root: Path) -> None:
        env = {**os.environ, **data_env(root)}
        for name, per_file in (("old", 2), ("new", 3)):
            clotho_data(root / f"{name}-data", clotho_captions_csv(NAMES, captions_per_file=per_file))
            subprocess.run([sys.executable, "-m", "benchmark.cli", *build_argv(f"{name}-data", f"built-{name}")],
                           cwd=root, check=True, capture_output=True, env=env)
            shutil.rmtree(root / f"{name}-data")
        subprocess.run([sys.executable, "-m", "benchmark.cli", "data", "export", "built-old", "--split",
                        "evaluation", "--to", "task"], cwd=root, check=True, capture_output=True, env=env)

    def state(root: Path) -> str:
        header = (root / "task" / "captions.csv").read_text().splitlines()[0]
        for name in NAMES:
            assert (root / "task" / name).is_file()
        assert header in ("file_name,caption_1,caption_2", "file_name,caption_1,caption_2,caption_3"), header
        return "new" if header.endswith("caption_3") else "old"

    return Scenario("data export", setup, lambda root: ["data", "export", "built-new", "--split", "evaluation",
                                                         "--to", "task", "--overwrite"],
                    state, lambda root: root / "task", data_env)


# The library entry points with no command of their own report a LarbError as the CLI does.
AS_CLI = textwrap.dedent('''
    import sys
    from benchmark.errors import LarbError
    def as_cli(work):
        try:
            work()
        except LarbError as exc:
            print(f"larb: error: {exc}", file=sys.stderr)
            sys.exit(2)
''')

ASSET_CODE = AS_CLI + textwrap.dedent('''
    from benchmark import assets
    assets.register(assets.Asset("fault/blob", sys.argv[1], "sha256:" + sys.argv[2], file_name="blob.bin"))
    as_cli(lambda: assets.fetch("fault/blob", progress=False))
''')


def asset_scenario(server_url: str, blob: bytes) -> Scenario:
    sha = hashlib.sha256(blob).hexdigest()

    def state(root: Path) -> str:
        cached = root / "cache" / "assets" / "blob.bin"
        if not cached.exists():
            part = cached.with_name("blob.bin.part")
            assert not part.exists() or blob.startswith(part.read_bytes())
            return "none"
        assert digest(cached) == sha, "a cached asset that is not the asset"
        return "new"

    return Scenario("asset cache", lambda root: None, lambda root: ["-c", ASSET_CODE, f"{server_url}/blob.bin", sha],
                    state, lambda root: root / "cache" / "assets" / "blob.bin",
                    lambda root: {"LARB_CACHE_DIR": str(root / "cache")})


EMBED_CODE = AS_CLI + textwrap.dedent('''
    from pathlib import Path
    import numpy as np
    from baselines.embedding_cache import EmbeddingCache, cached_extract
    items = [f"item {i}" for i in range(40)]
    def compute(batch):
        return np.stack([np.full(8, float(item.split()[1]), np.float32) for item in batch])
    def work():
        cache = EmbeddingCache("enc", "sha256:1", "p", Path("cache"))
        vectors, _ = cached_extract(cache, items, items, compute, 4, "embedding", progress=False)
        assert vectors[:, 0].tolist() == list(range(40))
    as_cli(work)
''')


def embedding_scenario() -> Scenario:
    def state(root: Path) -> str:
        from baselines.embedding_cache import EmbeddingCache

        cache = EmbeddingCache("enc", "sha256:1", "p", root / "cache")
        for i in range(40):
            if f"item {i}" in cache:
                assert cache.get(f"item {i}").tolist() == [float(i)] * 8
        return "new" if len(cache) == 40 else "none"

    return Scenario("embedding cache", lambda root: None, lambda root: ["-c", EMBED_CODE], state,
                    lambda root: next((root / "cache").glob("enc-*"), root / "cache" / "x") / "manifest.json")


OFFLINE = ["--set", "tagger=mn04", "--set", "text_encoder=all-MiniLM-L6-v2"]


def train_scenario() -> Scenario:
    argv = ["baseline", "train", "passt-mpnet-tags", "--train-task", "demo-train", *OFFLINE, "--set", "epochs=3",
            "--output", "run"]

    def state(root: Path) -> str:
        import torch

        from baselines import checkpoint

        run_dir = root / "run"
        for name in ("best.pt", "last.pt"):
            if (run_dir / name).exists():
                checkpoint.load(run_dir / name)  # whole, or this raises
        if (run_dir / "log.jsonl").exists():
            history = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
            if len(history) == 3:
                reference = torch.load(root.parent / "reference-best.pt", weights_only=True)
                trained = torch.load(run_dir / "best.pt", weights_only=True)
                assert trained["epoch"] == reference["epoch"] and trained["validation"] == reference["validation"]
                assert all(torch.equal(trained["head"][k], reference["head"][k]) for k in reference["head"])
                return "new"  # a resumed run ends exactly where an unharmed one does
        return "none"

    return Scenario("baseline train", lambda root: None, lambda root: argv, state, lambda root: root / "run" / "x")


def baseline_run_scenario() -> Scenario:
    def argv(root: Path) -> list[str]:
        return ["baseline", "run", "passt-mpnet-tags", "--task", "demo", *OFFLINE, "--set", "lambda=0",
                "--output", "subs/zero-shot"]

    def setup(root: Path) -> None:
        demo_submission(root / "subs" / "zero-shot", 4)
        (root / "old.csv").write_bytes((root / "subs" / "zero-shot" / "demo.csv").read_bytes())

    def state(root: Path) -> str:
        from benchmark.submission_folders import load_submission

        submission = load_submission(root / "subs" / "zero-shot")
        csv_bytes = submission.ranking_path("demo").read_bytes()
        return "old" if csv_bytes == (root / "old.csv").read_bytes() else "new"

    return Scenario("baseline run", setup, argv, state, lambda root: root / "subs" / "zero-shot")


# ---- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One LARB cache outside the workspaces: the demo data and the frozen encoders' vectors."""
    cache = tmp_path_factory.mktemp("warm-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LARB_CACHE_DIR", str(cache))
        yield cache


@pytest.fixture(scope="module")
def loopback() -> Iterator[tuple[str, bytes]]:
    blob = np.random.default_rng(0).bytes(3 << 20)
    with Loopback({"/blob.bin": blob}, lifetime=1800) as server:
        yield server.url, blob


def scenario_by_name(name: str, loopback: tuple[str, bytes]) -> Scenario:
    makers: dict[str, Callable[[], Scenario]] = {
        "evaluate": evaluate_scenario, "leaderboard": leaderboard_scenario, "data build": build_scenario,
        "data export": export_scenario, "asset cache": lambda: asset_scenario(*loopback),
        "embedding cache": embedding_scenario, "baseline train": train_scenario,
        "baseline run": baseline_run_scenario}
    return makers[name]()


NEEDS_MIRROR = {"baseline train", "baseline run"}
NAMES_OF_SCENARIOS = ["evaluate", "leaderboard", "data build", "data export", "asset cache", "embedding cache",
                      "baseline train", "baseline run"]


@pytest.fixture(scope="module")
def warm_encoders(warm_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The frozen encoders' vectors of the demo tasks in the warm cache, so that a baseline command
    run in a workspace only trains or ranks."""
    if not (MIRROR / "mn04_as_mAP_432.pt").exists():
        pytest.skip(f"the offline mirror {MIRROR} is absent (a clone without ../shared)")
    work = tmp_path_factory.mktemp("warm-encoders")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
        for task in ("demo", "demo-train"):
            subprocess.run([sys.executable, "-m", "benchmark.cli", "baseline", "run", "passt-mpnet-tags", "--task",
                            task, *OFFLINE, "--set", "lambda=0", "--output", str(work / task)], check=True,
                           capture_output=True, env={**os.environ, "TQDM_DISABLE": "1"})
        yield


@pytest.fixture(scope="module")
def zygote(warm_encoders: None) -> Iterator[Zygote]:
    warm = Zygote({**os.environ, "LARB_ASSETS_MIRROR": str(MIRROR), "TQDM_DISABLE": "1",
                   "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    yield warm
    warm.close()


@pytest.fixture
def scenario(request: pytest.FixtureRequest, warm_cache: Path, loopback: tuple[str, bytes],
             monkeypatch: pytest.MonkeyPatch) -> Scenario:
    made = scenario_by_name(request.param, loopback)
    if request.param in NEEDS_MIRROR:
        monkeypatch.setenv("LARB_ASSETS_MIRROR", str(MIRROR))
        made.zygote = request.getfixturevalue("zygote")
    return made


def template(scenario: Scenario, tmp_path: Path) -> Path:
    root = tmp_path / "template"
    root.mkdir()
    scenario.setup(root)
    return root


def fresh_copy(template_root: Path, name: str) -> Path:
    root = template_root.parent / name
    shutil.copytree(template_root, root, symlinks=True)
    return root


# ---- the tests --------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("scenario", NAMES_OF_SCENARIOS, indirect=True)
def test_a_kill_at_any_point_leaves_the_old_output_or_the_new_one(scenario: Scenario, tmp_path: Path) -> None:
    base = template(scenario, tmp_path)
    before = scenario.state(base) if scenario.output(base).exists() else "none"
    reference = fresh_copy(base, "reference")
    started = time.monotonic()
    code, err, events = run(scenario, reference)
    duration = time.monotonic() - started
    assert code == 0, err
    if scenario.name == "baseline train":
        shutil.copy(reference / "run" / "best.pt", base.parent / "reference-best.pt")
    assert scenario.state(reference) == "new" and not stray_files(scenario, reference)
    assert events >= 2, f"the command touched only {events} files under the workspace"
    # Kill at file events drawn with a seed; where a command has fewer than KILLS events, the rest
    # of the kills land at seeded random times within the length of an unharmed run.
    rng = np.random.default_rng(SEED)
    points: list[tuple[str, float]] = [("event", float(n)) for n in sorted(
        rng.choice(np.arange(1, events + 1), min(KILLS, events), replace=False).tolist())]
    points += [("time", t) for t in sorted(rng.uniform(0.1 * duration, duration, KILLS - len(points)).tolist())]

    def one_kill(numbered: tuple[int, tuple[str, float]]) -> tuple[int, str, str]:
        number, point = numbered
        kind, where = point
        root = fresh_copy(base, f"kill-{number}-{kind}-{where:.3f}")  # two times may print alike
        killed, _, _ = run(scenario, root, **({"at": int(where)} if kind == "event" else {"after": where}))
        after_kill = scenario.state(root) if scenario.output(root).exists() or before == "none" else "lost"
        again, err, _ = run(scenario, root)
        assert again == 0, f"the run after a kill at event {point} failed: {err}"
        assert scenario.state(root) == "new", f"kill at event {point}"
        assert not stray_files(scenario, root), f"kill at event {point} left {stray_files(scenario, root)}"
        shutil.rmtree(root)
        return killed, after_kill, err

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(one_kill, enumerate(points)))
    states = [state for _, state, _ in outcomes]
    assert set(states) <= {before, "new", "none"} and "lost" not in states, states
    killed = sum(code == -9 for code, _, _ in outcomes)
    print(f"\n{scenario.name}: {events} file events, {len(points)} kills ({killed} SIGKILLed, the rest finished "
          f"first; {duration:.1f} s a run), states after the kill: "
          f"{dict(zip(*np.unique(states, return_counts=True), strict=True))}")
    assert killed >= len(points) // 2, "most kill points must land before the command ends"


@contextlib.contextmanager
def mounted(kind: str, root: Path) -> Iterator[None]:
    """`root` (already filled) on a full tmpfs, or made read-only by a bind mount; root only."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs or a read-only bind needs root and mount(8)")
    if kind == "full":
        held = root.with_name(root.name + ".held")
        os.rename(root, held)
        root.mkdir()
        size = sum(p.stat().st_size + 8192 for p in held.rglob("*")) + (1 << 20)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root)], check=False).returncode:
            pytest.skip("this machine refuses to mount a tmpfs")
        try:
            shutil.copytree(held, root, symlinks=True, dirs_exist_ok=True)
            with contextlib.suppress(OSError), open(root / "filler", "wb") as filler:
                while True:
                    filler.write(b"\0" * 4096)
            yield
        finally:
            subprocess.run(["umount", "-l", str(root)], check=True)
    else:
        if subprocess.run(["mount", "--bind", str(root), str(root)], check=False).returncode:
            pytest.skip("this machine refuses a bind mount")
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(root)], check=True)
            yield
        finally:
            subprocess.run(["umount", "-l", str(root)], check=True)


CAUSES = {"full": "disk is full", "fsize": "file-size limit", "read-only": "read-only"}


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["full", "fsize", "read-only"])
@pytest.mark.parametrize("scenario", NAMES_OF_SCENARIOS, indirect=True)
def test_a_full_disk_a_size_limit_or_a_read_only_target_is_one_line(scenario: Scenario, fault: str,
                                                                      tmp_path: Path) -> None:
    base = template(scenario, tmp_path)
    root = fresh_copy(base, "faulty")
    before = {p.relative_to(root): digest(p) for p in root.rglob("*") if p.is_file()}
    with contextlib.ExitStack() as stack:
        if fault != "fsize":
            stack.enter_context(mounted(fault, root))
        code, err, _ = run(scenario, root, limit_bytes=512 if fault == "fsize" else None)
        line = one_line_error(err)
        assert code == 2
        assert CAUSES[fault] in line, line
        after = {p.relative_to(root): digest(p) for p in root.rglob("*") if p.is_file() and p.name != "filler"}
        changed = [str(p) for p in before if p in after and after[p] != before[p]]
        assert not changed, f"{fault}: files changed: {changed}"
        assert set(before) <= set(after), f"{fault}: files lost: {set(before) - set(after)}"
        assert not stray_files(scenario, root), stray_files(scenario, root)
