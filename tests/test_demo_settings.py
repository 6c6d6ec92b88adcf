"""The demo's fitted settings: input size and steps per folder, and its tuned config."""

import pytest

from tfmask.demo_plan import (EPOCHS, INPUT_SIZES, MIN_STEPS, fit_input_size, fit_train_steps,
                              max_train_steps)


def test_input_size_grows_with_the_photos():
    assert fit_input_size(256) == 128  # the bundled sample's 256x192
    assert fit_input_size(512) == 256  # a ~30-photo set of 512x384
    assert fit_input_size(4032) == INPUT_SIZES[-1][1]
    sizes = [fit_input_size(side) for side in (100, 320, 321, 800, 801, 5000)]
    assert sizes == sorted(sizes)


def test_steps_are_epochs_within_the_time_cap():
    cap_256 = max_train_steps(256)
    assert fit_train_steps(26, 256) == min(cap_256, -(-EPOCHS * 26 // 4))
    assert fit_train_steps(1, 256) == MIN_STEPS  # tiny folders still train
    assert fit_train_steps(10_000, 256) == cap_256  # big ones stop at the time cap
    # Larger inputs cost more per step: never more steps at a larger size.
    caps = [max_train_steps(size) for size in (64, 128, 192, 256, 320, 384, 512, 1024)]
    assert caps == sorted(caps, reverse=True) and caps[-1] > 0
    assert fit_train_steps(10_000, 1024) == max_train_steps(1024) < MIN_STEPS


def test_tuned_demo_config_translates_to_the_demo_model(tmp_path):
    from tfmask.config.translate import translate
    from tfmask.demo import DEMO_AUGMENTATION, tune_demo_config, write_demo_config

    records = tmp_path / "records"
    records.mkdir()
    (records / "label_map.pbtxt").write_text("item { id: 1 name: 'a' } item { id: 2 name: 'b' }")
    config = write_demo_config(records, tmp_path, num_classes=2, num_steps=40)
    plain = translate(config).params
    tune_demo_config(config, 192)
    t = translate(config)
    assert t.ignored == []
    model, parser = t.params.task.model, t.params.task.train_data.parser
    assert model.input_size[:2] == [192, 192]
    assert model.backbone.resnet.depth_multiplier == 0.5
    assert plain.task.model.backbone.resnet.depth_multiplier == 1.0
    assert parser.aug_rand_hflip and (parser.aug_scale_min, parser.aug_scale_max) == (0.75, 1.33)
    assert len(DEMO_AUGMENTATION) == 6
    # Everything else as the plain demo config: steps, schedule, heads.
    assert t.params.trainer.train_steps == plain.trainer.train_steps == 40
    assert model.detection_head.as_dict() == plain.task.model.detection_head.as_dict()


@pytest.mark.parametrize("long_side", [200, 512, 1280])
def test_plan_prints_the_fitted_steps(tmp_path, long_side):
    from tfmask.data.synth import synthesize
    from tfmask.demo_plan import plan_demo

    synthesize(tmp_path / "d", num_train=6, num_test=0,
               size_hw=(long_side * 3 // 4, long_side), seed=1)
    plan = plan_demo(tmp_path / "d")
    assert plan.input_size == fit_input_size(long_side)
    assert plan.train_steps == fit_train_steps(5, plan.input_size)
    assert f"{plan.train_steps} training steps" in "\n".join(plan.lines())
