"""Small helpers that need no OpenMMLab package (metafile reading)."""
