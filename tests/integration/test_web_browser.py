"""A web page served by a web action, in a real headless Chromium (Debian's
chromium): the .html action's page posts a form (urlencoded, with fetch) to
a second web action and shows its answer. The test reads the DOM Chromium
rendered, and saves a screenshot beside the test's logs."""
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import WispTestCase

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

PAGE = r'''
def main(args):
    return {"body": """<!doctype html>
<html><body>
<h1>Gateway</h1>
<form id="f"><input name="device" value="pump-7"><input name="level" value="42"></form>
<p id="answer">waiting</p>
<script>
const data = new URLSearchParams(new FormData(document.getElementById("f")));
fetch("/api/v1/web/guest/default/report.json", {method: "POST", body: data,
      headers: {"Content-Type": "application/x-www-form-urlencoded"}})
  .then(r => r.json())
  .then(j => { document.getElementById("answer").textContent = j.text; })
  .catch(e => { document.getElementById("answer").textContent = "failed: " + e; });
</script>
</body></html>"""}
'''

REPORT = ("def main(args):\n"
          "    return {'text': 'stored %s at %s via %s' % (args['device'], args['level'], args['__ow_method'])}\n")


class Browser(WispTestCase):
    wispd_args = ("--prewarm", "")

    def put(self, name, code):
        r = self.w.api("PUT", "actions/" + name, {
            "exec": {"kind": "python:3", "code": code},
            "annotations": [{"key": "web-export", "value": True}]})
        self.assertEqual(r.status, 200, r)

    def chromium(self, *args):
        profile = tempfile.mkdtemp(prefix="wisp-chromium-")
        try:
            return subprocess.run(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--user-data-dir=" + profile, "--virtual-time-budget=10000"]
                + list(args), capture_output=True, text=True, timeout=120)
        finally:
            shutil.rmtree(profile, ignore_errors=True)

    def test_page_posts_a_form_to_another_web_action(self):
        self.put("page", PAGE)
        self.put("report", REPORT)
        url = "http://127.0.0.1:%d/api/v1/web/guest/default/page.html" % self.w.port
        p = self.chromium("--dump-dom", url)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        self.assertIn('<p id="answer">stored pump-7 at 42 via post</p>', p.stdout, p.stdout[-2000:])
        shot = os.path.join(os.environ.get("WISP_ARTIFACTS", tempfile.gettempdir()),
                            "web_action_page.png")
        os.makedirs(os.path.dirname(shot), exist_ok=True)
        p = self.chromium("--screenshot=" + shot, "--window-size=800,400", url)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        with open(shot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        print("screenshot:", shot)


if __name__ == "__main__":
    unittest.main()
