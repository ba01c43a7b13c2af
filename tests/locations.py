"""Where the tests' inputs are, for test modules at any depth of tests/."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent  # the repository
FIXTURES = TESTS / "fixtures"
COMMITTED_STUDY = ROOT / "docs" / "results" / "cpu-medium" / "cpu-medium"  # the committed cpu-medium study
