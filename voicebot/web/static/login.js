/* The console's login form: POST /v1/auth/login, then on to ?next= (a path on this server only)
 * or the first page the user's role may open. */
(function () {
  "use strict";

  var form = document.querySelector(".lg-form");
  var error = document.querySelector(".lg-error");
  var submit = form.querySelector("button[type=submit]");
  var FIRST_PAGE = [["desk", "/desk"], ["live", "/live"], ["dashboard", "/dashboard"],
    ["campaigns", "/campaigns"], ["email", "/email/drafts"]];

  function target(permissions) {
    var next = new URLSearchParams(window.location.search).get("next") || "";
    if (next.charAt(0) === "/" && next.charAt(1) !== "/" && next.indexOf("\\") < 0) return next;
    for (var i = 0; i < FIRST_PAGE.length; i++) {
      if (permissions.indexOf(FIRST_PAGE[i][0]) >= 0) return FIRST_PAGE[i][1];
    }
    return "/";
  }

  function fail(message) {
    error.textContent = message;
    error.hidden = false;
    submit.disabled = false;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    error.hidden = true;
    var username = form.username.value.trim(), password = form.password.value;
    if (!username || !password) { fail("Enter your user name and password."); return; }
    submit.disabled = true;
    fetch("/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify({ username: username, password: password })
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        if (!response.ok) {
          fail((data && data.error && data.error.message) || "The server answered " + response.status + ".");
          return;
        }
        window.location.assign(target(data.user.permissions));
      });
    }).catch(function () { fail("The server could not be reached. Check the connection and try again."); });
  });
})();
