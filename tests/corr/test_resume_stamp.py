"""Which checkpoint a training resumes: only one written under the same resolved settings."""

from __future__ import annotations

import hashlib

from gnnff_stability.train.run import SETTINGS_STAMP, resume_checkpoint, settings_digest


def _finished_run(run_dir, digest):
    """A run directory as a finished training leaves it: checkpoints, a CSV log, the settings stamp."""
    (run_dir / "csv" / "version_0").mkdir(parents=True)
    (run_dir / "csv" / "version_0" / "metrics.csv").write_text("epoch,val_loss\n0,1.0\n")
    (run_dir / "last.ckpt").write_bytes(b"old weights")
    (run_dir / "best.ckpt").write_bytes(b"old weights")
    (run_dir / SETTINGS_STAMP).write_text(digest + "\n")


def test_digest_is_sha256_of_the_overrides_and_the_input_bytes(tmp_path):
    data = tmp_path / "train.xyz"
    data.write_bytes(b"frames")
    expected = hashlib.sha256(b"a=1\0b='x'\0" + hashlib.sha256(b"frames").digest()).hexdigest()
    assert settings_digest(["a=1", "b='x'"], [data]) == expected


def test_a_changed_setting_or_input_changes_the_digest(tmp_path):
    data = tmp_path / "train.xyz"
    data.write_bytes(b"frames")
    base = settings_digest(["corr={c_max:0.1}"], [data])
    assert settings_digest(["corr={c_max:0.1}"], [data]) == base
    assert settings_digest(["corr={c_max:0.05}"], [data]) != base
    data.write_bytes(b"other frames")
    assert settings_digest(["corr={c_max:0.1}"], [data]) != base


def test_same_settings_resume_the_last_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    _finished_run(run_dir, "d1")
    assert resume_checkpoint(run_dir, "d1") == run_dir / "last.ckpt"
    assert (run_dir / "csv" / "version_0" / "metrics.csv").exists()  # nothing removed


def test_other_settings_start_afresh_in_an_empty_run_dir(tmp_path):
    run_dir = tmp_path / "run"
    _finished_run(run_dir, "d1")
    assert resume_checkpoint(run_dir, "d2") is None
    assert sorted(p.name for p in run_dir.iterdir()) == [SETTINGS_STAMP]
    assert (run_dir / SETTINGS_STAMP).read_text().strip() == "d2"
    # a kill of the new training is then resumed under its own stamp
    (run_dir / "last.ckpt").write_bytes(b"new weights")
    assert resume_checkpoint(run_dir, "d2") == run_dir / "last.ckpt"


def test_a_checkpoint_without_a_stamp_is_not_resumed(tmp_path):
    run_dir = tmp_path / "run"
    _finished_run(run_dir, "d1")
    (run_dir / SETTINGS_STAMP).unlink()
    assert resume_checkpoint(run_dir, "d1") is None
    assert not (run_dir / "last.ckpt").exists()


def test_a_new_run_dir_is_created_and_stamped(tmp_path):
    run_dir = tmp_path / "new" / "run"
    assert resume_checkpoint(run_dir, "d1") is None
    assert (run_dir / SETTINGS_STAMP).read_text().strip() == "d1"
