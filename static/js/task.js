// The decision form keeps the choice and the editor in step: choosing
// "Edit, then run" opens the editor, and changing the call in the editor
// chooses "Edit, then run" (the server refuses an approval that carries an
// edit, so a page without this script loses nothing either).
(function () {
  "use strict";
  function fieldsetOf(element) {
    return element.closest("fieldset.decision");
  }
  document.addEventListener("change", function (event) {
    const input = event.target;
    if (input.type !== "radio" || !fieldsetOf(input)) return;
    const editor = fieldsetOf(input).querySelector("details.edit");
    if (editor && input.value === "edit" && input.checked) {
      editor.open = true;
      const args = editor.querySelector("textarea");
      if (args) args.focus();
    }
  });
  document.addEventListener("input", function (event) {
    const field = event.target;
    if (!field.closest || !field.closest("details.edit")) return;
    const edit = fieldsetOf(field).querySelector('input[type=radio][value="edit"]');
    if (edit && !edit.checked) edit.checked = true;
  });
})();
