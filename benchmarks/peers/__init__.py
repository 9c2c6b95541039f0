"""Code the peer servers run in their own venvs (made by ``setup.sh``), not here."""
