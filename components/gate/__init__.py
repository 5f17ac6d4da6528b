"""Gate stage: bless a challenger that meets its thresholds and beats the registry's champion by a margin."""
