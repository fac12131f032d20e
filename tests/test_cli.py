"The `walt-paper` command: help, and clear errors for bad arguments."
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def walt(*args):
    return subprocess.run([sys.executable, '-m', 'walt_paper.cli', *args], capture_output=True, text=True, cwd=ROOT)


def test_help_lists_commands():
    out = walt('--help')
    assert out.returncode == 0 and 'data' in out.stdout and 'run' in out.stdout


def test_unknown_preset_names_valid_ones():
    out = walt('data', '--preset', 'huge')
    assert out.returncode != 0
    assert "invalid choice: 'huge'" in out.stderr and 'smoke' in out.stderr and 'paper' in out.stderr


def test_unknown_notebook_is_named():
    out = walt('run', '--preset', 'smoke', '99_nothing')
    assert out.returncode != 0 and "no experiment notebook '99_nothing'" in out.stderr


def test_unknown_env_preset_is_named(monkeypatch):
    env = {'WALT_PRESET': 'bogus', 'PATH': '/usr/bin:/bin'}
    out = subprocess.run([sys.executable, '-c', 'from walt_paper.data import get_preset; get_preset()'],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode != 0 and "unknown preset 'bogus'" in out.stderr
