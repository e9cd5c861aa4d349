from .checkpoint_loader import load_from_local, load_from_url

__all__ = ['load_from_local', 'load_from_url']
