"""The project's file formats: images in (`images`: the one preprocessing path of every
command and export) and depth maps in and out (`depth`: the synface 16-bit PNG
convention)."""
