// The design system's behaviour (error summary focus, double-click prevention, ...).
import { initAll } from "/static/build/govuk/govuk-frontend.min.js";

initAll();
