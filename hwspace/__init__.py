"""What a chip is: spec -> peaks, bandwidths, capacity, area, yield, cost, power (numpy only)."""
