"""`larb baseline recipe NAME`: the exact commands that reproduce each reported row a baseline links to.

A recipe is derived, never written by hand, from two declarations:

- the row's `reproduce` link in `benchmark/data/reported.yaml`: the members' settings, the
  ensemble method, and `reproduce_training` (data a member was pre-trained on, e.g. Pellegrini's
  AudioCaps pre-training);
- the paper's protocol for the row's test set (`protocol`): which splits train and which one
  selects the checkpoint (Pellegrini, Park, Primus: Clotho development, selected on validation;
  Deshmukh et al.: Clotho development + validation, AudioCaps train and WavText5K, one model for
  both test sets), each split built and exported as a folder task.

So a recipe changes when the link or the protocol does, and `tests/test_recipes.py` runs every
recipe on `demo` with tiny settings appended to each command.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from baselines.registry import get_baseline
from benchmark.errors import LarbError
from benchmark.reported import Reported, load_reported
from benchmark.tasks import TASKS

# Pellegrini's AudioCaps pre-training: 100 epochs without a scheduler (then Clotho fine-tuning)
PRETRAINING_SETTINGS = ("epochs=100", "schedule=constant")


@dataclass(frozen=True)
class Source:
    """A dataset split, built and exported as a folder task (`tasks/<dataset>-<split>`)."""

    dataset: str
    split: str

    @property
    def folder(self) -> str:
        return f"tasks/{self.dataset}-{self.split}"

    def commands(self) -> list[list[str]]:
        data = f"data/{self.dataset}-{self.split}"
        return [["data", "build", self.dataset, "--split", self.split, "--output", data],
                ["data", "export", data, "--split", self.split, "--to", self.folder]]


CLOTHO_DEVELOPMENT, CLOTHO_VALIDATION = Source("clotho", "development"), Source("clotho", "validation")
AUDIOCAPS_TRAIN, AUDIOCAPS_VAL = Source("audiocaps", "train"), Source("audiocaps", "val")
WAVTEXT5K = Source("wavtext5k", "train")


@dataclass(frozen=True)
class Protocol:
    """How a paper trains for a test set: training splits, the selection split (None: hold out)."""

    train: tuple[Source, ...]
    val: Source | None


def protocol(baseline: str, task_id: str) -> Protocol:
    """The paper's protocol for one of a baseline's rows on `task_id` (a registered test task)."""
    if baseline == "clap-cnn14-htsat":  # one model, trained on everything, for both test sets
        return Protocol((CLOTHO_DEVELOPMENT, CLOTHO_VALIDATION, AUDIOCAPS_TRAIN, WAVTEXT5K), None)
    if evaluation_source(task_id).dataset == "audiocaps":
        return Protocol((AUDIOCAPS_TRAIN,), AUDIOCAPS_VAL)
    return Protocol((CLOTHO_DEVELOPMENT,), CLOTHO_VALIDATION)


def evaluation_source(task_id: str) -> Source:
    """The split whose exported folder holds the test task's audio."""
    built = TASKS[task_id].built_from
    if built is None:
        raise LarbError(f"task {task_id} is built from no dataset split, so a recipe cannot export its audio.",
                        fix="link reported rows to the task its split backs (e.g. clotho-v2.1/evaluation).")
    return Source(*built)


@dataclass(frozen=True)
class Recipe:
    """The commands of one reported row, in order (each an argv after `larb`)."""

    task: str
    system: str
    source: str
    sources: tuple[Source, ...]
    steps: tuple[tuple[str, ...], ...]
    submission: str
    downloads: tuple[str, ...] = ()  # files to put in the working folder first (not downloadable here)

    def text(self, with_data: bool = True) -> str:
        """The recipe as shell lines: the data steps (unless printed once for several recipes:
        `data_text`), then the model steps."""
        lines = [f"# {self.task}: {self.system} ({self.source})"]
        lines += [f"# first download {what} (no pinned checksum here)" for what in self.downloads]
        lines += data_text(self.sources).splitlines() if with_data else []
        lines += ["larb " + shlex.join(step) for step in self.steps]
        return "\n".join(lines)


def data_text(sources: Sequence[Source]) -> str:
    """Each split's build and export, once (a second build into the same folder is refused)."""
    unique = list(dict.fromkeys(sources))
    return "\n".join("larb " + shlex.join(command) for source in unique for command in source.commands())


@dataclass
class _Builder:
    """Turns one reported entry into steps; runs are named by what they are, so identical stages in
    several recipes share a run folder (a second `larb baseline train` there resumes, a no-op)."""

    baseline: str
    task: str
    entry: Reported
    folder: Callable[[Source], str]
    extra: Sequence[str]
    evaluate_on: Callable[[str], str]
    steps: list[tuple[str, ...]] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)

    def use(self, source: Source) -> str:
        if source not in self.sources:
            self.sources.append(source)
        return self.folder(source)

    def train(self, name: str, settings: Sequence[str], train: Sequence[Source], val: Source | None,
              init_from: str | None = None) -> str:
        """A training step; returns its run folder."""
        command = ["baseline", "train", name, *(a for s in train for a in ("--train-task", self.use(s)))]
        command += ["--val-task", self.use(val) if val is not None else "holdout"]
        if init_from is not None:
            command += ["--init-from", init_from]
        defaults = get_baseline(name).defaults
        named = [s for s in settings if _text(defaults[s.split("=", 1)[0]]) != s.split("=", 1)[1]]
        run = "runs/" + _name(name, command[3:], named)  # seed=0 and no seed are one run
        files = [f"{key}={file}" for key, (file, _) in get_baseline(name).local_files.items()]
        command += ["--output", run, *(a for s in (*settings, *files, *self.extra) for a in ("--set", s))]
        self.steps.append(tuple(command))
        return run

    def member(self, member: dict) -> str | None:
        """Train one member (and the runs it starts from); its checkpoint, or None when the
        configuration has nothing to train (a zero-shot member)."""
        name, wanted = member["baseline"], member.get("settings", {})
        settings = [f"{k}={_text(v)}" for k, v in wanted.items()]
        plan = protocol(name, self.task)
        if wanted.get("lambda") == 0.0 and name == "passt-mpnet-tags":
            return None  # tags only: no learnable parameter
        init = None
        if "audiocaps/train" in (self.entry.reproduce_training or ()):
            pretrained = self.train(name, [*settings, *PRETRAINING_SETTINGS], (AUDIOCAPS_TRAIN,), AUDIOCAPS_VAL)
            init = f"{pretrained}/best.pt"
        if wanted.get("stage") == 2:
            first = self.train(name, [*(s for s in settings if not s.startswith("stage=")), "stage=1"],
                               plan.train, plan.val, init)
            settings = [*settings, f"distill_from={first}/best.pt"]
            init = None
        return self.train(name, settings, plan.train, plan.val, init) + "/best.pt"

    def build(self) -> Recipe:
        checkpoints = [self.member(m) for m in self.entry.members]
        task = self.evaluate_on(self.task)
        if task != self.task:  # a stand-in with its own audio (the tests' demo)
            target = ["--task", task]
        elif TASKS[task].direction == "t2a":
            target = ["--task", self.use(evaluation_source(task))]
        else:  # an audio-to-text task has no folder form: its audio is the export of its split
            target = ["--task", task, "--audio", self.use(evaluation_source(task))]
        configuration = json.dumps([self.entry.members, self.entry.ensemble_method, self.entry.reproduce_training],
                                   sort_keys=True)
        submission = "submissions/" + _name(self.task, [configuration], [])  # rows of one configuration share it
        extra = [a for s in self.extra for a in ("--set", s)]
        if len(checkpoints) == 1:
            member = self.entry.members[0]
            zero_shot = [f"{k}={_text(v)}" for k, v in member.get("settings", {}).items()]
            command = ["baseline", "run", member["baseline"], *target, "--output", submission]
            if checkpoints[0] is None:
                command += [a for s in zero_shot for a in ("--set", s)] + extra
            else:
                command += ["--checkpoint", checkpoints[0], *extra]
        else:
            members = [c if c is not None else m["baseline"] for c, m in zip(checkpoints, self.entry.members,
                                                                              strict=True)]
            command = ["baseline", "ensemble", *members, *target, "--method", str(self.entry.ensemble_method),
                       "--output", submission, *extra]
        self.steps.append(tuple(command))
        self.steps.append(("evaluate", submission, "--task", task))
        downloads = tuple(dict.fromkeys(f"{where} as ./{file}" for m in self.entry.members
                                        for file, where in get_baseline(m["baseline"]).local_files.values()))
        return Recipe(self.task, self.entry.system, self.entry.source, tuple(self.sources), tuple(self.steps),
                      submission, downloads)


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _name(prefix: str, parts: Sequence[str], settings: Sequence[str]) -> str:
    """A readable, content-derived folder name."""
    digest = hashlib.sha256(json.dumps([prefix, list(parts), sorted(settings)]).encode()).hexdigest()[:10]
    return f"{prefix.replace('/', '-')}-{digest}"


def recipes(baseline: str, *, folder: Callable[[Source], str] = lambda s: s.folder, extra: Sequence[str] = (),
            evaluate_on: Callable[[str], str] = lambda task_id: task_id) -> list[Recipe]:
    """Every reported row on a registered task that links `baseline` (as a member), as a recipe.
    The tests' stand-ins: `folder` places the splits' task folders, `extra` settings go last on
    every model command, `evaluate_on` maps the row's test task to the task ranked and scored."""
    found = []
    for task_id, entries in load_reported().items():
        if task_id not in TASKS:
            continue  # a reported-only task: nothing to rank here
        for entry in entries:
            if any(m["baseline"] == baseline for m in entry.members):
                found.append(_Builder(baseline, task_id, entry, folder, extra, evaluate_on).build())
    return found
