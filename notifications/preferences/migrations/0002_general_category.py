from django.db import migrations


def make_general(apps, schema_editor):
    Category = apps.get_model("preferences", "Category")
    if not Category.objects.filter(is_default=True).exists():
        Category.objects.get_or_create(
            key="general",
            defaults={
                "name_en": "General",
                "name_ru": "Общие",
                "description_en": "Notifications that belong to no other category.",
                "description_ru": "Уведомления, не относящиеся к другим категориям.",
                "is_default": True,
            },
        )


class Migration(migrations.Migration):
    """The default category, so that notifications created as before (naming none) have one."""

    dependencies = [("preferences", "0001_initial")]

    operations = [migrations.RunPython(make_general, migrations.RunPython.noop)]
