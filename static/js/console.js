// Dev Tools Console: parse "METHOD /path" and a JSON body, send it to this origin's REST API
// with the session cookie and the CSRF token, and show the status and the pretty-printed response.
(function () {
  "use strict";

  var root = document.getElementById("console");
  if (!root) {
    return;
  }
  var editor = document.getElementById("console-request");
  var examples = document.getElementById("console-examples");
  var sendButton = document.getElementById("console-send");
  var statusBadge = document.getElementById("console-status");
  var timeLabel = document.getElementById("console-time");
  var errorBox = document.getElementById("console-error");
  var output = document.getElementById("console-response");

  var METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD"];
  var EXAMPLE = "GET /_security/_authenticate";

  function refuse(message) {
    throw new Error(message);
  }

  // The request typed in the editor, as {method, url, body}; throws an Error that says what is wrong.
  function parseRequest(text) {
    var lines = text.split(/\r?\n/);
    var first = 0;
    while (first < lines.length && !lines[first].trim()) {
      first += 1;
    }
    if (first === lines.length) {
      refuse("Type a request: a first line such as " + EXAMPLE + ", then an optional JSON body.");
    }
    var requestLine = lines[first].trim();
    var match = /^(\S+)\s+(\S+)$/.exec(requestLine);
    if (!match) {
      refuse("The first line must be METHOD /path, for example " + EXAMPLE + ". It is: " + requestLine);
    }
    var method = match[1].toUpperCase();
    if (METHODS.indexOf(method) === -1) {
      refuse("Unknown method " + match[1] + ": use " + METHODS.join(", ") + ".");
    }
    var path = match[2];
    if (/^[a-z][a-z0-9+.-]*:/i.test(path) || path.indexOf("//") === 0 || path.indexOf("\\") !== -1) {
      refuse(path + " is an absolute URL: the Console only sends requests to this server, to a path " +
        "such as /_security/api_key.");
    }
    if (path.charAt(0) !== "/") {
      path = "/" + path;  // as Kibana's Console, "GET _security/role" means "/_security/role"
    }
    var url = new URL(path, window.location.origin);
    if (url.origin !== window.location.origin) {
      refuse("Only paths on this server can be requested, such as /_security/api_key.");
    }
    var body = lines.slice(first + 1).join("\n").trim();
    if (body) {
      try {
        JSON.parse(body);
      } catch (error) {
        refuse("The request body is not valid JSON: " + error.message);
      }
      if (method === "GET" || method === "HEAD") {
        refuse("A browser cannot send a body with " + method + ". Use POST where the API accepts it, " +
          "as in POST /_security/_query/api_key.");
      }
    }
    return {method: method, url: url.pathname + url.search, body: body || null};
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function showStatus(response, elapsed) {
    var status = response.status;
    var kind = status >= 200 && status < 300 ? "text-bg-success" : status >= 500 ? "text-bg-danger" : "text-bg-warning";
    statusBadge.className = "badge " + kind;
    statusBadge.textContent = (status + " " + (response.statusText || "")).trim();
    statusBadge.hidden = false;
    timeLabel.textContent = Math.round(elapsed) + " ms";
  }

  function showBody(text) {
    var shown = text;
    if (!text) {
      shown = "(empty response body)";
    } else {
      try {
        shown = JSON.stringify(JSON.parse(text), null, 2);
      } catch (error) {
        shown = text;
      }
    }
    output.textContent = shown;
    output.classList.remove("text-body-secondary");
  }

  function send() {
    errorBox.hidden = true;
    var request;
    try {
      request = parseRequest(editor.value);
    } catch (error) {
      showError(error.message);
      return;
    }
    var headers = {"Accept": "application/json", "X-CSRFToken": root.dataset.csrfToken};
    if (request.body !== null) {
      headers["Content-Type"] = "application/json";
    }
    if (request.url.indexOf("/api/") === 0) {
      headers["kbn-xsrf"] = "console";  // Kibana's routes want it on every write
    }
    sendButton.disabled = true;
    timeLabel.textContent = "Sending…";
    var started = performance.now();
    fetch(request.url, {
      method: request.method,
      headers: headers,
      body: request.body,
      credentials: "same-origin",
      redirect: "manual",
      cache: "no-store"
    }).then(function (response) {
      if (response.type === "opaqueredirect") {
        statusBadge.hidden = true;
        timeLabel.textContent = "";
        showError("The server answered with a redirect, which the Console does not follow.");
        return null;
      }
      return response.text().then(function (text) {
        showStatus(response, performance.now() - started);
        showBody(text);
      });
    }).catch(function (error) {
      timeLabel.textContent = "";
      showError("The request could not be sent: " + error.message);
    }).finally(function () {
      sendButton.disabled = false;
    });
  }

  sendButton.addEventListener("click", send);
  editor.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      send();
    }
  });
  examples.addEventListener("change", function () {
    var option = examples.options[examples.selectedIndex];
    if (option && option.dataset.request) {
      editor.value = option.dataset.request;
      editor.focus();
    }
  });
})();
