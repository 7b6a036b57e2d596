"""always-on terminal UI (Textual). Imports core; core never imports this package."""
