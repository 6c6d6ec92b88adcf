"""labelImg XML reading, including hostile files."""

import pytest

from tfmask.errors import DataError
from tfmask.data.sources.voc_xml import read_voc_xml

GOOD = """<annotation>
  <filename>a.jpg</filename>
  <size><width>48</width><height>40</height><depth>3</depth></size>
  <object><name>cup</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>10.5</xmax>
    <ymax>20</ymax></bndbox></object>
  <object><name> speaker </name><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>4</xmax>
    <ymax>4</ymax></bndbox></object>
</annotation>"""


def test_reads_objects_in_order(tmp_path):
    (tmp_path / "a.xml").write_text(GOOD)
    ann = read_voc_xml(tmp_path / "a.xml")
    assert ann.size_hw == (40, 48)
    assert [(o.name, o.box_xyxy_px) for o in ann.objects] == [
        ("cup", (1.0, 2.0, 10.5, 20.0)), ("speaker", (0.0, 0.0, 4.0, 4.0))]
    assert ann.objects[0].line == 4


def test_external_entity_is_not_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    (tmp_path / "x.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        "<annotation><object><name>&xxe;</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
        "<xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>")
    with pytest.raises(DataError) as exc:
        read_voc_xml(tmp_path / "x.xml")
    assert "declares <!ENTITY>" in str(exc.value) and "TOPSECRET" not in str(exc.value)


def test_billion_laughs_is_not_expanded(tmp_path):
    ents = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{("&l%d;" % (i - 1)) * 10}">' for i in range(1, 10))
    (tmp_path / "b.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE a [{ents}]><annotation><object><name>&l9;</name>'
        "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox>"
        "</object></annotation>")
    # Refused either by tfmask's entity check or by libxml2's amplification guard.
    with pytest.raises(DataError, match="declares <!ENTITY>|amplification"):
        read_voc_xml(tmp_path / "b.xml")


@pytest.mark.parametrize("text,match", [
    ("<annotation><object>", "malformed XML"),
    ("<root/>", "expected labelImg/Pascal-VOC <annotation>"),
    ("<annotation><object><bndbox/></object></annotation>", "has no <name>"),
    ("<annotation><object><name>a</name></object></annotation>", "has no <bndbox>"),
    ("<annotation><object><name>a</name><bndbox><xmin>x</xmin><ymin>1</ymin><xmax>2</xmax>"
     "<ymax>2</ymax></bndbox></object></annotation>", "<xmin> is 'x', not a number"),
    ("<annotation><object><name>a</name><bndbox><xmin>1</xmin></bndbox></object>"
     "</annotation>", "has no <ymin>"),
])
def test_malformed_files_name_file_and_reason(tmp_path, text, match):
    (tmp_path / "m.xml").write_text(text)
    with pytest.raises(DataError) as exc:
        read_voc_xml(tmp_path / "m.xml")
    assert "m.xml" in str(exc.value) and match in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="XML box file not found"):
        read_voc_xml(tmp_path / "none.xml")
