"""The `hongtu` console script, run as a user runs it."""

import os
import subprocess
import sys
from pathlib import Path

HONGTU = str(Path(sys.executable).with_name("hongtu"))


def run(*args: str, url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run([HONGTU, *args], env=env, capture_output=True, text=True, timeout=300)


def test_init_db_twice_then_demo_then_refusal(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    assert run("init-db", url=url).returncode == 0
    again = run("init-db", url=url)
    assert again.returncode == 0 and "spatialite" in again.stdout
    demo = run("demo", "--orgs", "300", "--seed", "3", url=url)
    assert demo.returncode == 0, demo.stderr
    assert "organizations 300" in demo.stdout
    refused = run("demo", "--orgs", "300", url=url)
    assert refused.returncode == 1
    assert "--replace" in refused.stderr and "Traceback" not in refused.stderr
    analyzed = run("analyze", "--out", str(tmp_path / "run"), url=url)
    assert analyzed.returncode == 0, analyzed.stderr
    assert "两个覆盖率" in analyzed.stdout and (tmp_path / "run" / "coverage.csv").exists()
    compared = run("analyze", "--compare", "1", "1", url=url)
    assert compared.returncode == 0 and "became covered: 0" in compared.stdout
    # A joint-branch rule out of its range is refused, naming the rule, before any work.
    too_big = run("analyze", "--branch-max-units", "6", url=url)
    assert too_big.returncode == 1 and "2–5" in too_big.stderr and "Traceback" not in too_big.stderr
    too_few = run("analyze", "--branch-min-members", "2", url=url)
    assert too_few.returncode == 1 and "党章" in too_few.stderr


def test_unreachable_database_is_one_line_not_a_traceback():
    result = run("init-db", url="postgresql://postgres@127.0.0.1:1/none")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DATABASE_URL" in lines[0]


def test_flask_app_discovery_also_works(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'f.sqlite'}"}
    flask = str(Path(sys.executable).with_name("flask"))
    result = subprocess.run(
        [flask, "--app", "app", "init-db"],
        env=env,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_analyze_defaults_are_the_parameters_defaults():
    from app.cli import analyze_command
    from app.services.analysis import Parameters

    option = {p.name: p.default for p in analyze_command.params}
    defaults = Parameters()
    named = {
        "pairing": defaults.pairing,
        "sites": defaults.sites,
        "grid_target": defaults.grid_target,
        "branch_distance": defaults.branch_distance_m,
        "branch_max_units": defaults.branch_max_units,
        "branch_min_members": defaults.branch_min_members,
        "joins": defaults.joins,
    }
    assert {name: option[name] for name in named} == named
