"The package installs from settings.ini and is in step with it."
import configparser, importlib, shutil
from pathlib import Path

import walt_paper

ROOT = Path(__file__).resolve().parents[1]


def settings():
    cfg = configparser.ConfigParser(delimiters=['='])
    cfg.read(ROOT / 'settings.ini')
    return cfg['DEFAULT']


def test_version_matches_settings():
    assert walt_paper.__version__ == settings()['version']


def test_every_library_notebook_exports_its_module():
    # each library notebook (numbered below the experiments) exports one module named like it
    for nb in sorted((ROOT / 'nbs').glob('0[0-3]*_*.ipynb')):
        text = nb.read_text()
        exports = [l for l in text.splitlines() if '#| default_exp' in l]
        assert len(exports) == 1, f'{nb.name} must export exactly one module, found {exports}'
        module = exports[0].split('default_exp')[1].split('\\n')[0].strip().strip('",')
        assert nb.stem.split('_', 1)[1] == module, f'{nb.name} exports {module!r}, not a module named like it'
        importlib.import_module(f'walt_paper.{module}')


def test_console_script_installed():
    assert shutil.which('walt-paper') or (ROOT / '.venv/bin/walt-paper').exists()
