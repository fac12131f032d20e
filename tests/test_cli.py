"""The `walt-paper` command: help, and clear errors for bad arguments; the experiment notebooks' papermill parameters:
every notebook checks them first, and a misspelt one or a value of the wrong type stops it, named."""
import json, os, re, shutil, subprocess, sys
from pathlib import Path

import pytest

from walt_paper.cli import experiment_notebooks

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


def test_unknown_objective_names_valid_ones():
    out = walt('train', '--objective', 'audio')
    assert out.returncode != 0 and "invalid choice: 'audio'" in out.stderr and "'image', 'video'" in out.stderr


def test_unknown_notebook_is_named():
    out = walt('run', '--preset', 'smoke', '99_nothing')
    assert out.returncode != 0 and "no experiment notebook '99_nothing'" in out.stderr


def test_unknown_env_preset_is_named(monkeypatch):
    env = {'WALT_PRESET': 'bogus', 'PATH': '/usr/bin:/bin'}
    out = subprocess.run([sys.executable, '-c', 'from walt_paper.data import get_preset; get_preset()'],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode != 0 and "unknown preset 'bogus'" in out.stderr


# ---------------------------------------------------------------- experiment notebooks' parameters (papermill)

NOTEBOOKS = experiment_notebooks()
CHECK = 'check_parameters(globals(), known)'


def code_cells(nb):
    return [c for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']


def defaults(nb) -> dict:
    "An experiment notebook's parameters and their defaults, as its parameters cell defines them."
    from walt_paper.study import known_parameters
    ns = {}
    exec(''.join(code_cells(nb)[0]['source']), ns)
    return {k: v for k, v in known_parameters(ns).items() if k != 'known'}


def run_to_parameter_check(nb, parameters: dict) -> dict:
    "Execute `nb` as papermill does (its parameters cell, papermill's injected cell, on) up to its parameter check; the namespace."
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook
    node = parameterize_notebook(load_notebook_node(str(nb)), parameters, kernel_name='python3', language='python')
    ns = {}
    for cell in node.cells:
        if cell.cell_type != 'code': continue
        exec(compile(cell.source, nb.name, 'exec'), ns)
        if CHECK in cell.source: return ns
    raise AssertionError(f'{nb.name} never calls {CHECK}')


def run_to_value_checks(nb, parameters: dict, monkeypatch) -> dict:
    """Execute `nb` through the code cell after its parameter check, where it checks the parameters' values (unknown
    models, tasks, sizes, presets, noise outside [0, 1]) before any work: training or loading a model raises here."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook
    from walt_paper import study
    def ran_past(*args, **kw): raise AssertionError(f'{nb.name} went past its value checks with {parameters}')
    monkeypatch.setattr(study, 'ensure_models', ran_past); monkeypatch.setattr(study, 'load_model', ran_past)
    node = parameterize_notebook(load_notebook_node(str(nb)), parameters, kernel_name='python3', language='python')
    code = [cell.source for cell in node.cells if cell.cell_type == 'code']
    check = next(i for i, source in enumerate(code) if CHECK in source)
    ns = {}
    for source in code[:check + 2]: exec(compile(source, nb.name, 'exec'), ns)
    return ns


def wrong_type(value):
    "A value of another type than `value`'s, of the kind a command line gives by mistake (e.g. -p models video)."
    return {bool: 'yes', int: 'one', float: 'high', str: 3, list: 'video'}[type(value)]


def test_the_experiment_notebooks_are_04_to_16():
    assert [nb.name[:2] for nb in NOTEBOOKS] == [f'{i:02d}' for i in range(4, 17)]


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_every_experiment_notebook_checks_its_parameters_first(nb):
    cells = code_cells(nb)
    tagged = [i for i, c in enumerate(cells) if 'parameters' in c['metadata'].get('tags', [])]
    assert tagged == [0], f'{nb.name}: its first code cell, and only it, must be tagged parameters (found {tagged})'
    assert 'known = known_parameters(globals())' in ''.join(cells[0]['source']).strip().splitlines()[-1], \
        f'{nb.name}: the parameters cell must end by recording the defaults (known = known_parameters(globals()))'
    assert CHECK in ''.join(cells[1]['source']), f'{nb.name}: the cell after the parameters must call {CHECK}'
    assert run_to_parameter_check(nb, {}).keys() >= defaults(nb).keys()       # the defaults pass


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_wrong_type_of_every_parameter_is_named(nb):
    "Each parameter of each notebook given a value of another type stops the notebook at its check, naming it and the valid type."
    typed = {name: default for name, default in defaults(nb).items() if default is not None}
    assert typed, f'{nb.name} has no typed parameters'
    for name, default in typed.items():
        bad = wrong_type(default)
        with pytest.raises(TypeError, match=re.escape(f"parameter {name}={bad!r} is a {type(bad).__name__}; expected a "
                                                      f"{type(default).__name__} like the default {default!r}")):
            run_to_parameter_check(nb, {name: bad})


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_unknown_parameter_stops_the_notebook_through_papermill(nb, tmp_path):
    "A misspelt parameter given to papermill stops the notebook at its check, before anything is loaded or trained."
    env = {**os.environ, 'WALT_PRESET': 'smoke', 'WALT_DATA_DIR': str(tmp_path/'data'), 'OMP_NUM_THREADS': '1'}
    out = subprocess.run([sys.executable, '-m', 'papermill', nb.name, str(tmp_path/nb.name), '-p', 'nosie', '0.3',
                          '--log-level', 'ERROR', '--no-progress-bar'], cwd=nb.parent, env=env, capture_output=True, text=True)
    assert out.returncode != 0
    valid = sorted(defaults(nb))
    assert f"unknown parameter(s) ['nosie']; this notebook takes {valid}" in out.stdout + out.stderr, out.stderr[-2000:]
    ran = [c for c in json.loads((tmp_path/nb.name).read_text())['cells'] if c['cell_type'] == 'code' and c.get('execution_count')]
    last = ran[-1]['source']
    assert CHECK in (last if isinstance(last, str) else ''.join(last)), 'the notebook ran past its parameter check'


def test_wrong_type_stops_the_notebook_through_papermill(tmp_path):
    env = {**os.environ, 'WALT_PRESET': 'smoke', 'WALT_DATA_DIR': str(tmp_path/'data'), 'OMP_NUM_THREADS': '1'}
    out = subprocess.run([sys.executable, '-m', 'papermill', '13_scale_budget.ipynb', str(tmp_path/'out.ipynb'), '-p', 'sizes', 'small',
                          '--log-level', 'ERROR', '--no-progress-bar'], cwd=ROOT/'nbs', env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "parameter sizes='small' is a str; expected a list like the default ['tiny']" in out.stdout + out.stderr, out.stderr[-2000:]


BAD_VALUES = {   # parameter: (a bad value, the error naming it and what is valid)
    'preset': ('huge', r"unknown preset 'huge'; valid presets are \['paper', 'quick', 'smoke'\]"),
    'noise': (1.5, r"noise=1\.5 must be a fraction of the diffusion time in \[0, 1\]"),
    'noises': ([0.2, 1.5], r"noise levels \[1\.5\] are outside \[0, 1\]"),
    'models': (['video', 'vdeo'], r"models \['vdeo'\].*valid(: | models are )\['image', 'video'"),
    'control_models': (['vdeo'], r"unknown models \['vdeo'\]; valid models are \['image', 'video'"),
    'model': ('vdeo', r"unknown model 'vdeo'; valid models are \['image', 'video'"),
    'tasks': (['depth', 'colour'], {None: r"tasks \['colour'\] have no targets in the world; valid: \['category'",   # 10, 13
                                    '06_action': r"tasks \['depth', 'colour'\] are not this notebook's; valid: a non-empty list of "
                                                 r"distinct tasks of \['action_appearance', 'action_motion', 'arrow_of_time', 'playback_speed'\]"}),
    'sizes': (['huge'], r"unknown sizes \['huge'\]; valid sizes are \['tiny', 'small'"),
    'clips': (0, r"clips=0 must be >= 1"),
    'samples': (1, r"samples=1: a Fréchet distance needs at least 2 samples"),
    'epochs': (0, r"epochs=0 must be a positive integer \(probe training epochs\), or None for the preset's"),
}
VALUE_CASES = [(nb, name) for nb in NOTEBOOKS for name in BAD_VALUES if name in defaults(nb)]


@pytest.mark.parametrize('nb, name', VALUE_CASES, ids=[f'{nb.stem}-{name}' for nb, name in VALUE_CASES])
def test_bad_parameter_value_is_named_before_any_work(nb, name, monkeypatch):
    "An unknown preset, model, task or size, or a noise outside [0, 1], stops the notebook by name before it trains or loads anything."
    value, message = BAD_VALUES[name]
    if isinstance(message, dict): message = message.get(nb.stem, message[None])   # a notebook with a message of its own
    with pytest.raises(ValueError, match=message): run_to_value_checks(nb, {name: value}, monkeypatch)


def test_action_notebook_refuses_a_task_twice(monkeypatch):
    nb = next(nb for nb in NOTEBOOKS if nb.stem == '06_action')
    with pytest.raises(ValueError, match=r"tasks \['playback_speed', 'playback_speed'\] are not this notebook's; valid: a non-empty list of distinct"):
        run_to_value_checks(nb, {'tasks': ['playback_speed', 'playback_speed']}, monkeypatch)
    with pytest.raises(ValueError, match=r"tasks \[\] are not this notebook's"): run_to_value_checks(nb, {'tasks': []}, monkeypatch)


def test_every_experiment_notebook_checks_its_preset():
    assert {nb for nb, name in VALUE_CASES if name == 'preset'} == set(NOTEBOOKS)


NONE_DEFAULTS = [(nb, name, bad) for nb in NOTEBOOKS for name, bad in
                 dict(out_dir=3, block='two', blocks=3, epochs='many', budgets=100).items() if name in defaults(nb)]


@pytest.mark.parametrize('nb, name, bad', NONE_DEFAULTS, ids=[f'{nb.stem}-{name}' for nb, name, _ in NONE_DEFAULTS])
def test_wrong_type_of_a_parameter_defaulting_to_none_is_named(nb, name, bad):
    with pytest.raises((TypeError, ValueError), match=name): run_to_parameter_check(nb, {name: bad})


def test_every_parameter_defaulting_to_none_has_a_declared_type():
    "A new None-default parameter must be given its type in NONE_DEFAULT_TYPES, or its wrong values pass the check."
    from walt_paper.study import NONE_DEFAULT_TYPES
    undeclared = {(nb.name, name) for nb in NOTEBOOKS for name, value in defaults(nb).items() if value is None and name not in NONE_DEFAULT_TYPES}
    assert not undeclared, f"parameters defaulting to None without a type in NONE_DEFAULT_TYPES: {sorted(undeclared)}"


def test_epochs_and_tasks_reach_the_probes(tmp_path):
    """Notebook 06's `tasks` probes only the tasks asked for (playback speed alone, on the raw latents, at the smoke
    preset in a private folder), and `-p epochs 1` trains those probes anew under other settings (a probe cache entry of
    its own for each probe; at smoke the accuracies themselves sit at chance either way), into files that record it."""
    import pandas as pd
    from walt_paper.study import PROBE_SETTINGS
    assert PROBE_SETTINGS['smoke']['epochs'] != 1
    env = {**os.environ, 'WALT_PRESET': 'smoke', 'WALT_DATA_DIR': str(tmp_path/'data'), 'OMP_NUM_THREADS': '1'}
    cached = lambda: sorted(p.name for p in (tmp_path/'data'/'cache'/'probe-rows').glob('playback_speed-*.json'))
    def run(*params):
        out = subprocess.run([sys.executable, '-m', 'papermill', 'nbs/06_action.ipynb', str(tmp_path/'run.ipynb'), '-p', 'out_dir', str(tmp_path),
                              '-y', "{tasks: [playback_speed], models: [latents], control_models: [latents]}", *params,
                              '--log-level', 'ERROR', '--no-progress-bar'], cwd=ROOT, env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        return cached()
    preset_entries = run()
    one_epoch_entries = run('-p', 'epochs', '1')
    assert len(preset_entries) == 2 and len(one_epoch_entries) == 4 and set(preset_entries) < set(one_epoch_entries)   # natural and shuffled frames
    assert not (tmp_path/'action.csv').exists()                         # a subset never takes the whole run's name
    for name in ('action_tasksplayback_speed', 'action_tasksplayback_speed_epochs1'):
        rows = pd.read_csv(tmp_path/f'{name}.csv')
        assert set(rows['task']) == {'playback_speed'} and set(rows['model']) == {'latents'}
        assert set(rows['dataset']) == {'playback-speed', 'playback-speed+shuffled-frames'}
        assert (tmp_path/f'{name}.md').exists() and (tmp_path/f'{name}.png').exists()


def test_main_table_reads_the_rows_of_its_probe_length(tmp_path):
    """Notebook 09 with `epochs` reads the task notebooks' rows at that probe length (`depth_epochs30.csv`, ...) and
    writes a table named for it; missing, it names the files and the command that makes them. The committed paper rows,
    given the names of another length, must give the committed table's columns (all but the trivial predictions, which
    come from the preset's world: the smoke preset's here, so that no paper world is rendered)."""
    import pandas as pd
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    def run(out_dir, epochs):
        return subprocess.run([sys.executable, '-m', 'papermill', 'nbs/09_main_table.ipynb', str(tmp_path/'run.ipynb'), '-p', 'preset', 'smoke',
                               '-p', 'out_dir', str(out_dir), '-p', 'epochs', str(epochs), '--log-level', 'ERROR', '--no-progress-bar'],
                              cwd=ROOT, env=env, capture_output=True, text=True)
    names = ('depth', 'classification', 'action', 'tracking', 'camera_pose')
    empty = tmp_path/'empty'; empty.mkdir()
    for name in names: shutil.copy(ROOT/'figures'/f'{name}.csv', empty/f'{name}.csv')   # the default length's rows do not count
    out = run(empty, 30)
    assert out.returncode != 0
    assert re.search(r"no result rows at 30 probe epochs in .* \(depth_epochs30\.csv, classification_epochs30\.csv, "
                     r"action_epochs30\.csv, tracking_epochs30\.csv, camera_pose_epochs30\.csv\); run them first: "
                     r"papermill nbs/04_depth\.ipynb out\.ipynb -p preset smoke -p epochs 30 -p out_dir \S+; "
                     r"papermill nbs/05_classification\.ipynb .*; papermill nbs/08_camera_pose\.ipynb out\.ipynb", out.stdout + out.stderr), out.stderr[-2000:]
    rows = tmp_path/'rows'; rows.mkdir()
    for name in names: shutil.copy(ROOT/'figures'/f'{name}.csv', rows/f'{name}_epochs7.csv')
    out = run(rows, 7)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert not (rows/'main_table.md').exists() and (rows/'main_table_epochs7.png').exists()
    head = (rows/'main_table_epochs7.md').read_text().splitlines()[0]
    assert head.startswith('Main table, preset smoke, 7 probe epochs, seeds [0]') and 'depth_epochs7.csv, classification_epochs7.csv' in head
    table, committed = (pd.read_csv(p).drop(columns='trivial') for p in (rows/'main_table_epochs7.csv', ROOT/'figures'/'main_table.csv'))
    pd.testing.assert_frame_equal(table, committed)


# ---------------------------------------------------------------- walt-paper run: notebooks side by side

def test_parallel_run_reports_each_failure_by_notebook(tmp_path, monkeypatch):
    "Notebooks run in worker processes; each failure comes back named with its error, and no finished copy is left."
    from walt_paper.cli import run_notebooks
    monkeypatch.setenv('WALT_DATA_DIR', str(tmp_path/'data'))
    with pytest.raises(SystemExit) as e:
        run_notebooks(['08', '11'], 'smoke', force=True, out=tmp_path, jobs=2, bogus=1)
    message = str(e.value)
    for name in ('08_camera_pose.ipynb', '11_pca.ipynb'):
        assert re.search(name + r": PapermillExecutionError: .*unknown parameter\(s\) \['bogus'\]", message), message
        assert not (tmp_path/name).exists() and (tmp_path/name.replace('.ipynb', '.partial.ipynb')).exists()
    assert not (tmp_path/'timing.json').exists()          # nothing ran to the end: no timing recorded


def test_parallel_run_records_a_finished_notebook(tmp_path):
    "A notebook run through the worker pool is renamed from its partial copy and timed in timing.json."
    from walt_paper.cli import run_notebooks
    done = run_notebooks(['12'], 'smoke', force=True, out=tmp_path, jobs=2)
    assert done == [tmp_path/'12_explorer.ipynb'] and done[0].exists() and not (tmp_path/'12_explorer.partial.ipynb').exists()
    record = json.loads((tmp_path/'timing.json').read_text())
    assert record['notebooks']['12_explorer.ipynb'] > 0 and record['last_call']['jobs'] == 2


def test_notebooks_run_longest_first_by_their_recorded_times(tmp_path):
    "The pool starts the longest notebooks first, by timing.json; untimed ones first in the given order; no record keeps the order."
    from walt_paper.cli import longest_first
    given = [Path(f'nbs/{n}.ipynb') for n in ('06_action', '04_depth', '05_classification', '07_tracking', '13_new', '12_new')]
    assert longest_first(given, tmp_path) == given                     # no timing.json
    (tmp_path/'timing.json').write_text('{"notebooks": {"06_action.ipynb": 1673, "04_depth.ipynb": 1465, '
                                        '"05_classification.ipynb": 751, "07_tracking.ipynb": 1176}}')
    assert [p.stem for p in longest_first(given, tmp_path)] == ['13_new', '12_new', '06_action', '04_depth', '07_tracking', '05_classification']
    (tmp_path/'timing.json').write_text('{"notebooks": ')               # damaged: the times only order the runs
    assert longest_first(given, tmp_path) == given
    for odd in ('[]', '{"notebooks": []}', '{"notebooks": {"04_depth.ipynb": null, "06_action.ipynb": NaN, "05_classification.ipynb": "x"}}'):
        (tmp_path/'timing.json').write_text(odd)                          # no finite time: untimed, the given order
        assert longest_first(given, tmp_path) == given, odd
    (tmp_path/'timing.json').write_text('{"notebooks": {"04_depth.ipynb": null, "07_tracking.ipynb": 10, "05_classification.ipynb": 20}}')
    assert [p.stem for p in longest_first(given, tmp_path)] == ['06_action', '04_depth', '13_new', '12_new', '05_classification', '07_tracking']


def test_a_notebook_named_twice_runs_once():
    from walt_paper.cli import experiment_notebooks
    assert [p.name for p in experiment_notebooks(['04', '04_depth', '05', '04'])] == ['04_depth.ipynb', '05_classification.ipynb']


def test_what_runs_follows_the_package_code_and_the_summary_follows_the_rest(tmp_path):
    import json, os
    from walt_paper.cli import experiment_notebooks, notebooks_to_run, package_hash
    notebooks = experiment_notebooks(['04', '05', '09'])
    for nb in notebooks: (tmp_path/nb.name).write_text('{}')                      # outputs newer than the notebooks
    record = {'package': {nb.name: package_hash() for nb in notebooks}}
    (tmp_path/'timing.json').write_text(json.dumps(record))
    assert notebooks_to_run(notebooks, tmp_path) == []
    record['package'][notebooks[0].name] = 'other code'                          # 04 made with other code: it and 09 run
    (tmp_path/'timing.json').write_text(json.dumps(record))
    assert [p.name for p in notebooks_to_run(notebooks, tmp_path)] == ['04_depth.ipynb', '09_main_table.ipynb']
    assert len(notebooks_to_run(notebooks, tmp_path, force=True)) == 3
    (tmp_path/'timing.json').unlink()                                            # no record: run (once) and record
    assert len(notebooks_to_run(notebooks, tmp_path)) == 3


def test_a_failed_rerun_leaves_no_output_that_looks_done(tmp_path):
    from walt_paper.cli import run_notebooks
    run_notebooks(['12'], 'smoke', force=True, out=tmp_path)
    assert (tmp_path/'12_explorer.ipynb').exists()
    with pytest.raises(SystemExit, match='12_explorer.ipynb'):
        run_notebooks(['12'], 'smoke', force=True, out=tmp_path, bogus=1)     # fails at its parameter check
    assert not (tmp_path/'12_explorer.ipynb').exists() and (tmp_path/'12_explorer.previous.ipynb').exists()


def test_models_command_trains_under_the_preset_lock(tmp_path, monkeypatch):
    "`walt-paper models` holds the preset's lock while it trains, as notebooks do, so two trainers never write one run."
    import fcntl
    from walt_paper import cli, pipeline
    monkeypatch.setenv('WALT_DATA_DIR', str(tmp_path/'data'))
    held = []
    def fake_train(preset, **kwargs):
        with open(tmp_path/'data'/'runs'/preset/'.lock', 'w') as other:   # another open file: flock conflicts with the holder
            try: fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB); held.append(False); fcntl.flock(other, fcntl.LOCK_UN)
            except BlockingIOError: held.append(True)
        return {}
    monkeypatch.setattr(pipeline, 'train_models', fake_train)
    assert cli.main(['models', '--preset', 'smoke']) == 0
    assert held == [True]
