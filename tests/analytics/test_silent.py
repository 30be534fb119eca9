import numpy as np

from analytics.rules.silent import silent

H = 3600.0


def run(last, interval, now=100 * H):
    return silent(np.array(last, dtype=float), np.array(interval, dtype=float), now, factor=4,
                  min_silence_s=6 * H, default_interval_s=900, window_start=0.0)


def test_batched_nb_iot_upload_is_not_silent_but_a_stopped_meter_is():
    mask, silence = run([100 * H - 4 * H, 100 * H - 10 * H], [900, 900])
    assert mask.tolist() == [False, True]
    assert silence.tolist() == [4 * H, 10 * H]


def test_threshold_follows_the_devices_own_interval():
    # hourly meter: 4 intervals = 4 h < 6 h floor; daily meter: 4 days
    mask, _ = run([100 * H - 7 * H, 100 * H - 30 * H], [3600, 86400])
    assert mask.tolist() == [True, False]


def test_never_seen_device_is_silent_since_window_start_and_future_stamps_are_fresh():
    mask, silence = run([np.nan, 100 * H + 600], [np.nan, 900])
    assert mask.tolist() == [True, False]
    assert silence[0] == 100 * H and silence[1] == 0


def test_missing_interval_falls_back_to_default():
    mask, _ = run([100 * H - 5 * H, 100 * H - 7 * H], [np.nan, 0])
    assert mask.tolist() == [False, True]
