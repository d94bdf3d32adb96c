from sgpo.cli.main import run

run()
