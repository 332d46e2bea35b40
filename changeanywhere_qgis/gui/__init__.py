"""The interactive side: dock, polygon map tool, rubber band, generation task, layer styling."""
