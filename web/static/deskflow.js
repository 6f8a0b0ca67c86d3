/* Deskflow's own script: conditional fields, cascading selects, table rows, confirmations.
   The server decides every answer again; this only keeps the page in step as people type.
   Rules come from <script type="application/json" id="df-rules"> (forms.client.client_rules). */
"use strict";
(function () {
  var FAIL = {};  // thrown when the server could not evaluate a rule either: the rule is false

  function truthy(v) {
    return !(v === null || v === undefined || v === false || v === 0 || v === "" ||
             (Array.isArray(v) && v.length === 0));
  }

  function equal(a, b) {
    if (Array.isArray(a) || Array.isArray(b)) {
      return Array.isArray(a) && Array.isArray(b) && a.length === b.length &&
        a.every(function (x, i) { return equal(x, b[i]); });
    }
    if (typeof a === "boolean" && typeof b === "number") return Number(a) === b;
    if (typeof b === "boolean" && typeof a === "number") return a === Number(b);
    return a === b;
  }

  function ordered(op, a, b) {
    if (a === null || b === null) return false;  // an empty value is neither smaller nor larger
    var nums = typeof a === "number" && typeof b === "number";
    if (!nums && !(typeof a === "string" && typeof b === "string")) throw FAIL;
    return op === "<" ? a < b : op === "<=" ? a <= b : op === ">" ? a > b : a >= b;
  }

  function contains(item, box) {
    if (box === null) return false;
    if (Array.isArray(box)) return box.some(function (x) { return equal(item, x); });
    if (typeof box === "string" && typeof item === "string") return box.indexOf(item) !== -1;
    throw FAIL;
  }

  function evaluate(node, values) {
    if ("const" in node) return node.const;
    if ("field" in node) return values[node.field] === undefined ? null : values[node.field];
    if ("list" in node) return node.list.map(function (n) { return evaluate(n, values); });
    if ("and" in node || "or" in node) {
      var isAnd = "and" in node, parts = isAnd ? node.and : node.or, last = null;
      for (var i = 0; i < parts.length; i++) {
        last = evaluate(parts[i], values);
        if (truthy(last) !== isAnd) return last;
      }
      return last;
    }
    if ("not" in node) return !truthy(evaluate(node.not, values));
    if ("call" in node) {
      var arg = evaluate(node.args[0], values);
      if (node.call === "default") return arg === null ? evaluate(node.args[1], values) : arg;
      if (node.call === "len") {
        if (arg === null) return 0;
        if (typeof arg === "string" || Array.isArray(arg)) return arg.length;
        throw FAIL;
      }
      if (arg === null) return "";
      if (typeof arg !== "string") throw FAIL;
      return node.call === "lower" ? arg.toLowerCase() : arg.toUpperCase();
    }
    if ("op" in node) {
      var a = evaluate(node.left, values), b = evaluate(node.right, values);
      switch (node.op) {
        case "==": return equal(a, b);
        case "!=": return !equal(a, b);
        case "in": return contains(a, b);
        case "not in": return !contains(a, b);
        default: return ordered(node.op, a, b);
      }
    }
    throw FAIL;
  }

  // null: no rule; a {"server": true} rule is `whenServer`; a rule that fails is false
  function holds(rule, values, whenServer) {
    if (!rule) return null;
    if (rule.server) return whenServer;
    try { return truthy(evaluate(rule, values)); } catch (e) { if (e === FAIL) return false; throw e; }
  }

  function inRow(el) { return el.closest("[data-table-row]") !== null; }

  // the field's own inputs, not the cells of a table that happen to share its name
  function inputsOf(scope, name) {
    return Array.prototype.filter.call(scope.querySelectorAll('[data-field="' + name + '"]'),
      function (el) { return el.matches("input, select, textarea") && (inRow(el) === scope.matches("[data-table-row]")); });
  }

  function readValue(form, f) {
    if (f.type === "table") {
      var rows = form.querySelectorAll('[data-field-wrap="' + f.name + '"] [data-table-row]');
      return Array.prototype.filter.call(rows, function (r) {
        return Array.prototype.some.call(r.querySelectorAll("input, select, textarea"), function (el) {
          return el.type === "checkbox" ? el.checked : el.value.trim() !== "";
        });
      }).map(function () { return {}; });
    }
    var el = inputsOf(form, f.name)[0];
    if (!el) return null;
    if (f.type === "boolean") return el.checked;
    if (f.type === "multichoice") return selectedValues(el);
    if (f.type === "file") return el.files && el.files.length ? el.files.length : null;  // no rule reads a file
    var text = el.value.trim();
    if (text === "") return null;
    if (f.type === "integer" || f.type === "number") {
      if (/^[+-]?[0-9]+$/.test(text)) return parseInt(text, 10);
      if (f.type === "number" && /^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(text)) return parseFloat(text);
      return null;  // not a number: the server reads it as no answer
    }
    return text;
  }

  // a required_if field that holds looks like an always-required one: the same hidden-from-
  // screen-readers asterisk after its label (inside a table's legend), `required` on its inputs
  function setRequired(form, f, required) {
    var wrap = form.querySelector('[data-field-wrap="' + f.name + '"]');
    if (f.type !== "table") {
      inputsOf(form, f.name).forEach(function (el) {
        el.required = required;
        if (required) el.setAttribute("aria-required", "true"); else el.removeAttribute("aria-required");
      });
    }
    if (!wrap || !f.required_if) return;
    var label = wrap.querySelector("label, legend");
    if (!label) return;
    var mark = wrap.querySelector("[data-required-mark]");
    if (required && !mark) {
      mark = document.createElement("span");
      mark.className = "text-danger";
      mark.setAttribute("aria-hidden", "true");
      mark.setAttribute("data-required-mark", "");
      mark.textContent = " *";
      if (label.tagName === "LEGEND") label.appendChild(mark); else label.after(mark);
    } else if (!required && mark) {
      mark.remove();
    }
  }

  // checks across fields (forms.client): a message next to its field, or at the top of the form
  function applyChecks(form, rules, values) {
    form.querySelectorAll("[data-check-message]").forEach(function (el) { el.remove(); });
    (rules.checks || []).forEach(function (check) {
      if (holds(check.when, values, false) !== true) return;
      var wrap = check.field && form.querySelector('[data-field-wrap="' + check.field + '"]');
      var shownThere = wrap && !wrap.hidden;
      var said = Array.prototype.some.call((shownThere ? wrap : form).querySelectorAll(".invalid-feedback"),
        function (el) { return el.textContent.indexOf(check.message) !== -1; });
      if (said) return;  // the server already put it there
      var box = document.createElement("div");
      box.setAttribute("data-check-message", "");
      box.textContent = check.message;
      if (shownThere) {
        box.className = "invalid-feedback d-block";
        wrap.appendChild(box);
      } else {
        box.className = "alert alert-danger py-2";
        form.insertBefore(box, form.firstChild);
      }
    });
  }

  // in form order, as the server does: a condition sees the answers above it, hidden ones as null
  function applyRules(form, rules) {
    var values = {};
    rules.fields.forEach(function (f) { values[f.name] = null; });
    rules.fields.forEach(function (f) {
      var shown = holds(f.show_if, values, true) !== false;
      var wrap = form.querySelector('[data-field-wrap="' + f.name + '"]');
      if (wrap) wrap.hidden = !shown;
      var required = shown && (f.required || holds(f.required_if, values, false) === true);
      setRequired(form, f, required);
      values[f.name] = shown ? readValue(form, f) : null;
    });
    applyChecks(form, rules, values);
  }

  // cascading selects: offer only the options whose data-parent matches the parent's value
  var allOptions = new WeakMap(), lastParent = new WeakMap();
  function selectedValues(el) {
    if (!el) return [];
    if (el.tagName !== "SELECT") return el.value ? [el.value] : [];
    return Array.prototype.filter.call(el.options, function (o) { return o.selected && o.value; })
      .map(function (o) { return o.value; });
  }

  function cascade(form) {
    form.querySelectorAll("select[data-depends-on]").forEach(function (select) {
      if (!allOptions.has(select)) allOptions.set(select, Array.prototype.slice.call(select.options));
      var scope = select.closest("[data-table-row]") || form;
      var chosen = selectedValues(inputsOf(scope, select.getAttribute("data-depends-on"))[0]);
      if (lastParent.get(select) === chosen.join("\n")) return;
      lastParent.set(select, chosen.join("\n"));
      var keep = selectedValues(select);
      while (select.firstChild) select.removeChild(select.firstChild);
      allOptions.get(select).forEach(function (o) {
        var p = o.getAttribute("data-parent");
        if (!o.value || (p !== null && chosen.indexOf(p) !== -1)) {
          o.selected = keep.indexOf(o.value) !== -1;
          select.appendChild(o);
        }
      });
      if (!select.multiple && selectedValues(select).length === 0) select.value = "";
    });
  }

  function renumber(row, index) {
    row.querySelectorAll("[name], [id], label[for]").forEach(function (el) {
      ["name", "id", "for"].forEach(function (attr) {
        var v = el.getAttribute(attr);
        if (v) el.setAttribute(attr, v.replace(/-[0-9]+-/, "-" + index + "-"));
      });
    });
  }

  // "Accessory, row 2": labels say which row they are in, counted as shown
  function relabel(body) {
    body.querySelectorAll("[data-table-row]").forEach(function (row, i) {
      row.querySelectorAll("[data-row-label]").forEach(function (label) {
        var hiddenPart = label.querySelector(".visually-hidden");
        if (hiddenPart) hiddenPart.textContent = ", row " + (i + 1);
        else label.textContent = label.getAttribute("data-row-label") + ", row " + (i + 1);
      });
      row.querySelectorAll("[data-remove-row] .visually-hidden").forEach(function (el) {
        el.textContent = " row " + (i + 1);
      });
    });
  }

  function clearRow(row) {
    row.querySelectorAll("input, select, textarea").forEach(function (el) {
      if (el.type === "checkbox" || el.type === "radio") el.checked = false;
      else if (el.tagName === "SELECT") el.selectedIndex = el.multiple ? -1 : 0;
      else el.value = "";
      el.classList.remove("is-invalid");
      el.removeAttribute("aria-invalid");
    });
    row.querySelectorAll(".invalid-feedback").forEach(function (el) { el.remove(); });
  }

  function addRow(button) {
    var body = document.getElementById(button.getAttribute("data-add-row")).tBodies[0];
    var rows = body.querySelectorAll("[data-table-row]");
    var max = parseInt(button.closest("[data-max-items]") ? button.closest("[data-max-items]").getAttribute("data-max-items") : "", 10);
    if (!rows.length || (max && rows.length >= max)) return;
    var next = 0;
    rows.forEach(function (r) {
      var named = r.querySelector("[name]");
      var m = named && /-([0-9]+)-/.exec(named.getAttribute("name"));
      if (m) next = Math.max(next, parseInt(m[1], 10) + 1);
    });
    var copy = rows[rows.length - 1].cloneNode(true);
    clearRow(copy);
    renumber(copy, next);
    body.appendChild(copy);
    relabel(body);
    var first = copy.querySelector("input, select, textarea");
    if (first) first.focus();
  }

  function removeRow(button) {
    var row = button.closest("[data-table-row]"), body = row.parentNode;
    if (body.querySelectorAll("[data-table-row]").length > 1) row.remove();
    else clearRow(row);
    relabel(body);
  }

  // <select data-df-insert="TEXTAREA-ID">: each option carries its server-rendered text in data-text
  function insertChosen(select) {
    var option = select.options[select.selectedIndex];
    var box = document.getElementById(select.getAttribute("data-df-insert"));
    if (!option || !option.value || !box) return;
    var text = option.getAttribute("data-text") || "";
    box.value = box.value.trim() ? box.value.replace(/\s+$/, "") + "\n\n" + text : text;
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
    select.selectedIndex = 0;
  }

  // [data-df-known-errors] before an incident form: keep the known errors of the chosen service or CI
  function filterKnownErrors(box) {
    var form = document.getElementById("df-order");
    if (!form) return;
    var pick = function (name) {
      var el = name ? form.querySelector('[name="' + name + '"]') : null;
      return el && !el.disabled && !el.closest("[hidden]") ? el.value : "";
    };
    var service = pick(box.getAttribute("data-service-field"));
    var ci = pick(box.getAttribute("data-ci-field"));
    var any = false;
    box.querySelectorAll("[data-service]").forEach(function (li) {
      var match = (service && li.getAttribute("data-service") === service) ||
        (ci && li.getAttribute("data-ci") === ci);
      li.hidden = !match;
      any = any || match;
    });
    box.hidden = !any;
  }

  function init() {
    document.querySelectorAll("[data-df-known-errors]").forEach(function (box) {
      var form = document.getElementById("df-order");
      var refresh = function () { filterKnownErrors(box); };
      if (form) {
        form.addEventListener("change", refresh);
        form.addEventListener("input", refresh);
      }
      refresh();
    });
    document.querySelectorAll("select[data-df-insert]").forEach(function (select) {
      select.addEventListener("change", function (event) {
        event.stopPropagation();
        insertChosen(select);
      });
    });
    var summary = document.getElementById("df-error-summary");
    if (summary) summary.focus();
    document.querySelectorAll("form").forEach(function (form) {
      // <form data-rules="ID">: the rules are in the JSON block with that id
      var data = form.hasAttribute("data-rules") && document.getElementById(form.getAttribute("data-rules"));
      var rules = data ? JSON.parse(data.textContent) : null;
      var refresh = function () {
        cascade(form);
        if (rules) applyRules(form, rules);
      };
      form.addEventListener("input", refresh);
      form.addEventListener("change", refresh);
      refresh();
    });
    document.addEventListener("click", function (event) {
      var target = event.target.closest("[data-confirm], [data-add-row], [data-remove-row]");
      if (!target) return;
      if (target.hasAttribute("data-confirm")) {
        if (!window.confirm(target.getAttribute("data-confirm"))) event.preventDefault();
        return;
      }
      if (target.hasAttribute("data-add-row")) addRow(target); else removeRow(target);
      var form = target.closest("form");
      if (form) form.dispatchEvent(new Event("change"));
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
}());
