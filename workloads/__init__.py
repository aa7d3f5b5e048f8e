"""What a model asks: architecture + scenario -> operator tables (numpy only)."""
