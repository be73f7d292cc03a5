from tests.browser.test_map_states import *  # noqa
from tests.browser.conftest import *  # noqa

def test_dbg(page, dashboard, probe):
    sign_in(page, dashboard, dashboard.admin_token)
    page.goto(f"{dashboard.url}#/vehicle/{PROBE_VIN}")
    time.sleep(5)
    print(page.inner_text("main")[:1500])
    print(dashboard.platform.telemetry.twin(SYSTEM, PROBE_VIN).reported)
