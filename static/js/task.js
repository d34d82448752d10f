// The decision form keeps the choice and its fields in step: choosing
// "Edit, then run" opens the editor, changing the call in the editor chooses
// "Edit, then run" (the server refuses an approval that carries an edit), and
// the message to the model shows only while a choice the model reads it with
// is chosen (an approval would drop it). Without this script every field
// shows and the server says what a choice lacks.
(function () {
  "use strict";
  function fieldsetOf(element) {
    return element.closest("fieldset.decision");
  }

  function showMessage(fieldset, focus) {
    const box = fieldset.querySelector(".message-box");
    if (!box) return;
    const chosen = fieldset.querySelector("input[type=radio]:checked");
    const wanted = !chosen || box.dataset.with.split(" ").includes(chosen.value);
    box.hidden = !wanted;
    if (wanted && focus) box.querySelector("textarea").focus();
  }

  function showMessages(root) {
    root.querySelectorAll("fieldset.decision").forEach(function (fieldset) {
      showMessage(fieldset, false);
    });
  }

  document.addEventListener("change", function (event) {
    const input = event.target;
    if (input.type !== "radio" || !fieldsetOf(input)) return;
    const fieldset = fieldsetOf(input);
    const editor = fieldset.querySelector("details.edit");
    if (editor && input.value === "edit" && input.checked) {
      editor.open = true;
      const args = editor.querySelector("textarea");
      if (args) args.focus();
    }
    showMessage(fieldset, input.checked);
  });
  document.addEventListener("input", function (event) {
    const field = event.target;
    if (!field.closest || !field.closest("details.edit")) return;
    const edit = fieldsetOf(field).querySelector('input[type=radio][value="edit"]');
    if (edit && !edit.checked) {
      edit.checked = true;
      showMessage(fieldsetOf(field), false);
    }
  });
  // The form is drawn again after a refused decision (htmx swaps the panel);
  // a message refused as missing comes back with its choice, so in sight.
  document.addEventListener("htmx:load", function (event) {
    showMessages(event.detail.elt);
  });
  showMessages(document);
})();
