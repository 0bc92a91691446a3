"""Playback tracking: confirmed positions, extrapolation, caps and clearing."""

from __future__ import annotations

from flowspec.transports.playback import Playback


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_assumes_real_time_from_the_first_audio_and_caps_at_what_was_sent() -> None:
    clock = Clock()
    playback = Playback(clock)
    assert playback.sent("a", 100) is True
    assert playback.sent("a", 100) is False
    clock.now += 0.05
    assert round(playback.played_ms()) == 50
    clock.now += 1
    assert round(playback.played_ms()) == 200
    assert playback.clear() == ("a", 200)
    assert playback.clear() is None


def test_a_confirmed_stop_freezes_the_position_and_finishes_the_item() -> None:
    clock = Clock()
    playback = Playback(clock)
    playback.sent("a", 300)
    playback.confirmed("a", 120, playing=True)
    clock.now += 0.03
    assert round(playback.played_ms()) == 150
    assert playback.finished() is None
    playback.confirmed("other", 10)  # about another item: ignored
    playback.confirmed("a", 300, playing=False)
    clock.now += 5
    assert round(playback.played_ms()) == 300
    assert playback.finished() == "a"
    assert playback.sent("b", 20) is True


def test_audio_after_the_client_ran_dry_plays_from_when_it_arrives() -> None:
    clock = Clock()
    playback = Playback(clock)
    playback.sent("a", 100)
    clock.now += 1  # everything sent has played
    playback.sent("a", 100)
    clock.now += 0.04
    assert round(playback.played_ms()) == 140


def test_a_whole_millisecond_report_of_a_fractional_length_finishes_the_item() -> None:
    playback = Playback(Clock())
    playback.sent("a", 100.0417)  # 2,401 samples at 24 kHz
    playback.sent("a", 20.375)
    playback.confirmed("a", 120, playing=False)  # rounded down by the client
    assert playback.finished() == "a"
    playback.sent("b", 20.375)
    playback.confirmed("b", 19, playing=False)  # stopped short: it ran dry, nothing more came
    assert playback.finished() is None


def test_without_a_playing_flag_a_report_of_everything_sent_is_a_stop() -> None:
    playback = Playback(Clock())
    playback.sent("a", 40.375)
    playback.confirmed("a", 20)
    assert playback.finished() is None
    playback.confirmed("a", 40)
    assert playback.finished() == "a"
