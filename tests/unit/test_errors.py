"""Typed errors: distinct exit codes per class (the README's table), readable sentences."""

from vmops.errors import (
    ALL_ERRORS,
    MalformedAnswer,
    NoAnswer,
    NotSent,
    OutcomeUnknown,
    ProviderUnavailable,
    Unreachable,
    UsageError,
)


def test_each_error_class_has_its_own_exit_code_except_outcome_unknown():
    codes = {}
    for cls in ALL_ERRORS:
        if cls in (OutcomeUnknown, MalformedAnswer, Unreachable, NoAnswer, NotSent):  # kinds of ProviderUnavailable: same exit code
            assert cls.exit_code == ProviderUnavailable.exit_code
            continue
        assert cls.exit_code not in codes, (cls, codes.get(cls.exit_code))
        codes[cls.exit_code] = cls
    assert 0 not in codes and 1 not in codes


def test_message_is_one_sentence_with_hint():
    e = UsageError("unknown provider 'aws'", hint="Use one of: crusoe, lambda, nebius")
    assert str(e) == "unknown provider 'aws'. Use one of: crusoe, lambda, nebius."
    assert "\n" not in str(ProviderUnavailable("down", provider="crusoe"))
    assert str(ProviderUnavailable("down", provider="crusoe")).startswith("crusoe: down.")
