"""tensorflow-datasets as a data source that fails fast and clearly when offline.

    builder = prepared_builder("squad/v1.1", data_dir, "use --data_dir=...", default_url)
"""

import threading
import urllib.error
import urllib.parse
import urllib.request


def reachable(url, timeout_s=3.0):
    """True if an HTTP HEAD of `url` gets any answer within `timeout_s` (DNS included)."""
    answered = []

    def probe():
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout_s)
            answered.append(True)
        except urllib.error.HTTPError:
            answered.append(True)  # the server answered, if only with an error status
        except (OSError, ValueError):
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout_s + 1.0)
    return bool(answered)


def prepared_builder(name, data_dir, instead, default_url):
    """The tfds builder of `name`, downloaded and prepared if needed.

    Raises RuntimeError in seconds (not after tfds' own retries) when the data is not prepared
    under `data_dir` and the download host (the builder config's `data_url`, else
    `default_url`) cannot be reached; `instead` tells the user what to pass instead.
    """
    import tensorflow_datasets as tfds  # imported here: only this path needs it

    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        url = getattr(builder.builder_config, "data_url", None) or default_url
        host = urllib.parse.urlparse(url).hostname
        if not reachable(f"https://{host}/"):
            raise RuntimeError(
                f"tensorflow-datasets needs network access to download {name} (cannot reach "
                f"{host}) and it is not prepared under {builder.data_dir}; {instead}")
        builder.download_and_prepare()
    return builder
