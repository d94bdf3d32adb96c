"""The starter's training command: settings it cannot honour are refused before anything is trained or written."""


def test_max_steps_before_the_first_spread_check_is_refused_naming_the_option(cli, tmp_path):
    code, out, err = cli("starter", "train", "--max-steps", 10, "--out", tmp_path / "starter")
    assert code == 2 and not out
    assert "--max-steps 10 ends before the first spread check at step 300: give at least 300" in err
    assert not (tmp_path / "starter").exists()
