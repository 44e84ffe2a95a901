"""Credit codes (GB 32100-2015), organization codes (GB 11714) and grid numbering."""

import numpy as np

from geo import codes


def test_known_credit_codes_validate():
    # Published examples of well-formed codes; the last has its check character altered.
    result = codes.valid_credit_codes(
        np.array(["91350100M000100Y43", "91110000600037341L", "91110000600037341M", None, "", "9111"], dtype=object)
    )
    assert result.tolist() == [True, True, False, False, False, False]


def test_codes_with_forbidden_letters_are_invalid():
    assert not codes.valid_credit_codes(np.array(["9135010OM000100Y43"], dtype=object))[0]


def test_organization_code_check_digit():
    assert codes.org_code_check_digits(np.array(["60003734"]))[0] == "1"


def test_generated_codes_are_valid_and_carry_district():
    rng = np.random.default_rng(3)
    district = np.array(["530102", "530111", "530181"] * 100)
    social = np.arange(300) % 2 == 0
    made = codes.make_credit_codes(rng, district, social)
    assert codes.valid_credit_codes(made).all()
    assert all(c[2:8] == d for c, d in zip(made, district, strict=True))
    assert all(c[:2] == ("51" if s else "91") for c, s in zip(made, social, strict=True))


def test_grid_sequence_reads_north_to_south_then_west_to_east():
    # Two rows of three cells; y grows northwards.
    x = np.array([0, 10, 20, 0, 10, 20], dtype=float)
    y = np.array([10, 10, 10, 0, 0, 0], dtype=float)
    assert codes.grid_sequence(x[::-1], y[::-1], row_height=5).tolist() == [6, 5, 4, 3, 2, 1]
    assert codes.grid_sequence(x, y, row_height=5).tolist() == [1, 2, 3, 4, 5, 6]


def test_code_consistency_with_parent():
    ok = codes.code_consistent(
        np.array(["530102001", "530103001", "53010200"]), np.array(["530102", "530102", "530102"]), "street"
    )
    assert ok.tolist() == [True, False, False]
