"""A loaded version: its engines, id maps, dynamic batcher and the top-k step."""
