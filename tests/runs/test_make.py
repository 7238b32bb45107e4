"""make targets: every target's dry run names commands that exist and settings that compose;
README states each QUICK target's cell count; a paper table's QUICK twin runs end to end."""

from __future__ import annotations

import csv
import importlib
import itertools
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from gradinv.cli import CONFIG_DIR
from tests.conftest import REPO

#: What every target's dry run is asked for: the CPU twin and the papers' budgets (table-dia
#: then needs an ImageNet folder, which a dry run never opens).
VARIANTS = (["QUICK=1"], ["IMAGENET_ROOT=/data/imagenet"])
#: The Hydra config each Hydra entry point composes.
HYDRA_CONFIGS = {"gradinv.main": "config", "gradinv.train": "train"}
SWEEP = "/tmp/dry-run-sweep"  # never written: make -n runs nothing
NEEDS_MAKE = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def make_targets() -> list[str]:
    """The Makefile's targets, from make's own database (its .PHONY list)."""
    database = subprocess.run(["make", "-pRrq"], cwd=REPO, capture_output=True, text=True).stdout
    phony = next(line for line in database.splitlines() if line.startswith(".PHONY:"))
    return phony.split(":", 1)[1].split()


def run_make(target: str, *variables: str, dry: bool = False) -> subprocess.CompletedProcess:
    """``make TARGET VARIABLES`` in the repository with this interpreter, its install step taken
    as done (``dry``: the commands printed, nothing run)."""
    flags = ["-s", "-n"] if dry else ["-s"]
    command = ["make", *flags, "-o", ".venv/.installed", f"PYTHON={sys.executable}", target]
    return subprocess.run(
        [*command, *variables], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def dry_run(target: str, *variables: str) -> list[list[str]]:
    """The commands ``make TARGET`` would run (nothing runs), each split into its words."""
    done = run_make(target, f"SWEEP={SWEEP}", *variables, dry=True)
    assert done.returncode == 0, f"make -n {target} {' '.join(variables)}: {done.stderr}"
    commands = []
    for line in done.stdout.replace("\\\n", " ").splitlines():
        words = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        words.whitespace_split = True
        command: list[str] = []
        for word in [*words, ";"]:
            if word in (";", "&&", "||", "|"):
                commands += [command] if command else []
                command = []
            else:
                command.append(word)
    return commands


def python_target(command: list[str]) -> tuple[str, list[str]] | None:
    """(module, arguments) of a command that runs gradinv's python, else None."""
    if command[0] != sys.executable:
        return None
    if command[1] == "-m":
        return command[2], command[3:]
    return ".".join(Path(command[1]).with_suffix("").parts), command[2:]


def cells(arguments: list[str]) -> list[list[str]]:
    """The override lists of the runs a Hydra command launches (one, or each cell of its -m grid)."""
    overrides = [a for a in arguments if a != "-m"]
    if "-m" not in arguments:
        return [overrides]
    values = [
        [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
        if o.is_sweep_override()
        else [o.input_line]
        for o in OverridesParser.create().parse_overrides(overrides)
    ]
    return [list(cell) for cell in itertools.product(*values)]


def sweeps(target: str, *variables: str) -> list[list[str]]:
    """The arguments of each Hydra sweep (``-m``) that ``make TARGET`` launches."""
    found = [python_target(command) for command in dry_run(target, *variables)]
    return [
        arguments
        for module, arguments in filter(None, found)
        if module in HYDRA_CONFIGS and "-m" in arguments
    ]


@NEEDS_MAKE
def test_readme_states_the_runs_each_paper_target_launches() -> None:
    columns = {}  # target -> README's columns: target, grid, QUICK=1, measured
    for line in (REPO / "README.md").read_text().splitlines():
        if found := re.match(r"\| `make (\S+)` \|", line):
            columns[found[1]] = line.split(" | ")
    checked = []
    for target in make_targets():
        paper, quick = (
            sum(len(cells(sweep)) for sweep in sweeps(target, *v)) for v in VARIANTS[::-1]
        )
        if quick:
            assert re.search(rf"\b{paper} runs\b", columns[target][1]), (
                f"README: {target} runs {paper} cells"
            )
            assert re.search(rf"\b{quick} runs\b", columns[target][2]), (
                f"README: {target} QUICK=1 runs {quick} cells"
            )
            checked.append(target)
    assert {"table-dia", "table-ppp"} <= set(checked)


@NEEDS_MAKE
def test_a_paper_target_resumes_in_the_sweep_folder_it_is_given() -> None:
    """README's resume command: every sweep of the target writes under SWEEP with resume=true."""
    checked = 0
    for target in make_targets():
        for sweep in sweeps(target, "QUICK=1", "ARGS=resume=true"):
            folder = next(a for a in sweep if a.startswith("hydra.sweep.dir="))
            assert folder.startswith(f"hydra.sweep.dir={SWEEP}") and "resume=true" in sweep, target
            checked += 1
    assert checked >= 4


@pytest.mark.slow
@NEEDS_MAKE
def test_every_make_target_dry_runs_and_names_commands_that_exist() -> None:
    """Each target (found in the Makefile, each listed by ``make help``) expands, every program
    it calls exists, every module imports, and every group option its runs name composes with
    the fields the run overrides (option by option: key existence does not depend on the values)."""
    listed = subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True).stdout
    targets = make_targets()
    assert [line.split()[0] for line in listed.splitlines()] == sorted(targets)
    composed: dict[tuple, set[str]] = {}  # (config, fields overridden) -> group options composed
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        for target in targets:
            for variables in VARIANTS:
                for command in dry_run(target, *variables):
                    assert shutil.which(command[0]), f"make {target}: {command[0]} not found"
                    found = python_target(command)
                    if found is None:
                        continue
                    module, arguments = found
                    importlib.import_module(module)
                    for overrides in cells(arguments) if module in HYDRA_CONFIGS else []:
                        keys = [o.split("=")[0] for o in overrides]
                        options = {
                            o
                            for o, k in zip(overrides, keys)
                            if (CONFIG_DIR / k.lstrip("+~")).is_dir()
                        }
                        seen = composed.setdefault((module, frozenset(keys)), set())
                        if not options <= seen:
                            compose(HYDRA_CONFIGS[module], overrides=overrides)
                            seen |= options
    assert {"attack=rgap", "model=vit_b16", "defense=ppp", "client=fedavg"} <= set().union(
        *composed.values()
    )


@pytest.mark.slow
@NEEDS_MAKE
def test_make_table_dia_quick_twin_runs_end_to_end(tmp_path: Path) -> None:
    """`make table-dia QUICK=1` narrowed to a CPU-second twin: IG and DIA on the MLP, two p; it
    ends with its report.html and, W&B being offline in tests, where its W&B report waits."""
    sweep = tmp_path / "sweep"
    done = run_make(
        "table-dia",
        "QUICK=1",
        "DIA_ATTACKS=ig,dia",
        "DIA_QUICK_BUDGETS=mlp:3",
        "DIA_QUICK_DATASETS=mnist",
        "DIA_QUICK_P=0,0.25",
        f"SWEEP={sweep}",
        "WANDB_REPORT=me/gradinv",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "4 of 4 runs ok, 0 left out" in done.stdout
    report, wandb_report = done.stdout.splitlines()[-2:]
    assert report == f"report.html: {sweep / 'analysis' / 'report.html'}"
    assert wandb_report.startswith(
        f"W&B report not published: W&B is set offline (WANDB_MODE); its specification is in "
        f"{sweep / 'analysis' / 'wandb_report.json'}, published later by `wandb sync {sweep}/mlp/*/wandb/offline-run-* && "
    )
    assert (
        f"hydra.sweep.dir={sweep}/mlp trainer.enable_progress_bar=false attack=ig,dia"
        in (sweep / "analysis" / "report.html").read_text()
    )
    rows = (sweep / "analysis" / "table_psnr.md").read_text().splitlines()
    assert rows[2] == "| dataset | model | defense | attack | p=0 | p=0.25 |"
    assert rows[4].startswith("| mnist | mlp | none | dia | ")
    assert rows[5].startswith("| mnist | mlp | none | ig | ")
    assert (sweep / "analysis" / "plot_psnr.png").is_file()
    assert (sweep / "analysis" / "gallery_mnist.png").is_file()


@pytest.mark.slow
@NEEDS_MAKE
def test_make_table_dp_quick_twin_runs_end_to_end(tmp_path: Path) -> None:
    """`make table-dp QUICK=1` narrowed to two CPU-second cells: IG on the MLP at epsilon 10 and
    without noise (epsilon infinite), analysed by epsilon with each run's privacy."""
    sweep = tmp_path / "sweep"
    done = run_make(
        "table-dp",
        "QUICK=1",
        "DP_MODELS=mlp",
        "DP_ATTACKS=ig",
        "DP_EPSILONS=10",
        "DP_BATCHES=2",
        "DP_ITERS=3",
        f"SWEEP={sweep}",
        "ARGS=logger=none model.width=32",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 of 2 runs ok, 0 left out" in done.stdout
    rows = (sweep / "analysis" / "table_psnr.md").read_text().splitlines()
    assert (
        rows[2]
        == "| dataset | model | defense | attack | defense.epsilon | dataset.batch_size | p=0.25 |"
    )
    assert [row.split(" | ")[4] for row in rows[4:]] == ["–", "10"]
    with (sweep / "analysis" / "runs.csv").open() as table:
        epsilons = sorted(row["privacy_epsilon"] for row in csv.DictReader(table))
    assert epsilons[0] == "" and 9.99 <= float(epsilons[1]) <= 10  # no noise: no finite epsilon
    assert (sweep / "analysis" / "plot_psnr_by_defense_epsilon.png").is_file()
