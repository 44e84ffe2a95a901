"""gunicorn settings for Hongtu; gunicorn reads this file from the directory it starts in."""

import gc
import sys


def post_worker_init(worker) -> None:
    """Make a new worker's first answers as fast as its later ones.

    Every template is compiled now rather than by the first page that needs it, and what the
    worker made while starting (modules, the app, compiled templates: about 200,000 objects)
    is moved out of the cyclic collector's sight with ``gc.freeze``: it lives as long as the
    worker, and the first full collection, which scanned all of it, had fallen inside the
    first map page (0.12 of its 0.26 s at 100k organizations).
    """
    # A thread building a map image holds the GIL for the whole switch interval (5 ms) each
    # time: a request that needs it a hundred times then waits half a second. A shorter
    # interval hands it over sooner.
    sys.setswitchinterval(0.0005)
    from app.web.results import start_watch

    start_watch(worker.wsgi)
    env = worker.wsgi.jinja_env
    for name in env.list_templates(extensions=("html",)):
        env.get_template(name)
    gc.freeze()


#: gunicorn's thread worker, closing finished connections off its accept loop (app/web/serving.py).
worker_class = "app.web.serving.ThreadWorker"

#: Threads per worker. A map image waits for the process's browser (app/web/renderer.py); with
#: threads, the pages and the short queue of the renderer hold four of them at most, and the
#: rest keep answering map and API requests.
threads = 8
