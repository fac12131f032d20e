"""End to end, the study's pipeline must learn: a world, an autoencoder and both denoisers trained at the quick preset
(the smallest whose world teaches a probe anything: 384 training clips; at smoke, 48, every probe sits at chance),
their features, and the attentive probe on the world's appearance-driven action, the one world task that quick learns.
A broken link anywhere (data, latents, training, features, probe, labels) leaves the probe at chance."""
import pytest
from walt_paper import probes, study
from walt_paper.data import world_split

MARGIN = 0.06   # quick runs so far: I-WALT 0.375-0.45, V-WALT 0.36-0.55 against a majority class of 0.23 (192 test
                # clips, one probe seed's binomial spread about 0.03)

@pytest.fixture(scope='module')
def chance():
    "Trains the quick autoencoder, I-WALT and V-WALT once (cached in data/runs/quick); the majority class's test top-1."
    study.ensure_models('quick')
    return probes.trivial_metrics('action_appearance', world_split('train', 'quick'), world_split('test', 'quick'))['top1']

@pytest.mark.parametrize('model', ['image', 'video'])
def test_trained_model_beats_chance_on_appearance_actions(chance, model):
    rows = study.probe_rows('action_appearance', model, 'quick', seeds=(0,))
    accuracy = float(rows[(rows.split == 'test') & (rows.metric == 'top1')].value.mean())
    assert 0 < chance < 0.5
    assert accuracy > chance + MARGIN, f"{model}: test top-1 {accuracy:.3f} against the majority class's {chance:.3f}"
