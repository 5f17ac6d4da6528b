"""Register stage: register a blessed model with its lineage tags and move the champion alias to it."""
