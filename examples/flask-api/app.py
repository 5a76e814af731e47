"""Entry point.

    gunicorn --chdir examples/flask-api -w 4 -b 127.0.0.1:7000 app:app
    python examples/flask-api/app.py --port 7000
    flask --app examples/flask-api/app.py run --port 7000
"""

import argparse

from api import create_app

app = create_app()

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the reference API (development server).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7000)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args()
    app.run(host=args.host, port=args.port, debug=args.debug)
